//! A headless Chromium driven through chromedriver's WebDriver protocol (JSON over
//! HTTP on 127.0.0.1), for tests of the approver page in a real browser. Needs
//! Debian's `chromium` and `chromium-driver` packages (`.ci/run` installs them).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::cluster::free_port;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser: a chromedriver process and its session; both end on drop.
pub struct Browser {
    driver: std::process::Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile, window
    /// `width`x`height` (below 500 px wide: a phone's screen, emulated). Panics with an
    /// install hint when either is missing.
    pub async fn start(width: u32, height: u32) -> Browser {
        for (bin, pkg) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: install Debian's `{pkg}` package \
                 (apt-get install chromium chromium-driver; .ci/run does this)"
            );
        }
        let port = free_port();
        let driver = std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let profile = tempfile::tempdir().expect("profile dir");
        let mut b = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
        };
        b.wait_ready().await;
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", b._profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        let mut options = json!({"binary": CHROMIUM, "args": args});
        if width < 500 {
            // Headless windows are at least 500 px wide: emulate a phone's screen.
            options["mobileEmulation"] = json!({"deviceMetrics": {
                "width": width, "height": height, "pixelRatio": 1.5, "touch": true,
            }});
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
        }}});
        let v = b.call("POST", "/session", Some(caps)).await;
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {v}"))
            .to_string();
        b
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Ok(s)) = tokio::time::timeout(
                Duration::from_secs(2),
                tokio::net::TcpStream::connect(self.addr),
            )
            .await
            {
                drop(s);
                if let Ok((200, v)) = exchange(self.addr, "GET", "/status", None).await {
                    if v["value"]["ready"] == json!(true) {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One WebDriver command; returns its `value`, panics on a WebDriver error.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method, path, body).await {
            Ok(v) => v,
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }

    async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let (status, v) = exchange(self.addr, method, path, body).await?;
        if status == 200 {
            Ok(v["value"].clone())
        } else {
            Err(format!("{status} {}", v["value"]))
        }
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", &self.at("/url"), Some(json!({ "url": url })))
            .await;
    }

    /// The elements matching a CSS selector now.
    pub async fn all(&self, css: &str) -> Vec<String> {
        let v = self
            .call(
                "POST",
                &self.at("/elements"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits up to `limit` for an element matching `css` whose text contains `text`.
    pub async fn wait_for(&self, css: &str, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            for e in self.all(css).await {
                if self.text(&e).await.contains(text) {
                    return e;
                }
            }
            if Instant::now() > deadline {
                let body = self.all("body").await;
                let shown = match body.first() {
                    Some(b) => self.text(b).await,
                    None => String::new(),
                };
                panic!("no {css:?} containing {text:?} within {limit:?}; the page shows:\n{shown}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first element matching `css` inside element `parent`.
    pub async fn find_in(&self, parent: &str, css: &str) -> String {
        let v = self
            .call(
                "POST",
                &self.at(&format!("/element/{parent}/element")),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no {css:?} in element: {v}"))
            .to_string()
    }

    pub async fn text(&self, element: &str) -> String {
        match self
            .try_call("GET", &self.at(&format!("/element/{element}/text")), None)
            .await
        {
            Ok(v) => v.as_str().unwrap_or_default().to_string(),
            // The page re-rendered under us: that element is gone.
            Err(_) => String::new(),
        }
    }

    pub async fn type_into(&self, element: &str, text: &str) {
        self.call(
            "POST",
            &self.at(&format!("/element/{element}/value")),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn click(&self, element: &str) {
        self.call(
            "POST",
            &self.at(&format!("/element/{element}/click")),
            Some(json!({})),
        )
        .await;
    }

    /// Runs a script in the page and returns its result.
    /// Opens the approver page at `base`, waits for its sign-in form, signs in
    /// with `token` and waits until the header names `who`.
    pub async fn sign_in(&self, base: &str, token: &str, who: &str) {
        self.goto(&format!("{base}/ui")).await;
        let form = self
            .wait_for("form#login", "Approver token", Duration::from_secs(30))
            .await;
        let input = self.find_in(&form, "input[name=token]").await;
        self.type_into(&input, token).await;
        self.click(&self.find_in(&form, "button[type=submit]").await)
            .await;
        self.wait_for(
            "header",
            &format!("signed in as {who}"),
            Duration::from_secs(30),
        )
        .await;
    }

    pub async fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            Some(json!({"script": js, "args": []})),
        )
        .await
    }

    /// The current page as PNG bytes.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self.call("GET", &self.at("/screenshot"), None).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("screenshot is base64")
    }

    /// Saves a screenshot under the test's temporary directory and returns its path;
    /// with `PGWARDEN_SCREENSHOTS=DIR` also as DIR/`name` (how docs/ gets them).
    pub async fn save_screenshot(&self, name: &str) -> PathBuf {
        let png = self.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(name);
        std::fs::write(&path, &png).expect("write screenshot");
        if let Some(docs) = std::env::var_os("PGWARDEN_SCREENSHOTS") {
            std::fs::write(Path::new(&docs).join(name), &png).expect("write screenshot copy");
        }
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; then chromedriver itself.
        if !self.session.is_empty() {
            let addr = self.addr;
            let path = format!("/session/{}", self.session);
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(async {
                        let _ = exchange(addr, "DELETE", &path, None).await;
                    });
                }
            })
            .join();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One HTTP/1.1 request to chromedriver and its JSON reply. chromedriver keeps
/// connections open, so the body is read by its Content-Length (60 s limit: starting
/// a browser on a busy machine is slow).
async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let work = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 16384];
        loop {
            let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!(
                    "connection closed early: {:?}",
                    String::from_utf8_lossy(&raw)
                ));
            }
            raw.extend_from_slice(&buf[..n]);
            let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("bad status line in {head:?}"))?;
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| format!("no content-length in {head:?}"))?;
            if raw.len() >= end + 4 + len {
                let v: Value = serde_json::from_slice(&raw[end + 4..end + 4 + len])
                    .map_err(|e| format!("not JSON: {e}"))?;
                return Ok((status, v));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .map_err(|_| format!("{method} {path}: no answer within 60 s"))?
}
