//! What a webhook receives, as pure functions: pgwarden's JSON body or a Slack
//! incoming-webhook body (`text` and `blocks`), and the signature header's value.

use serde_json::{json, Value};

use crate::config::notify::WebhookFormat;
use crate::hold::{HoldEvent, HoldEventKind};

/// Slack refuses a section text over 3000 characters; the SQL is cut well before.
const SLACK_SQL_CHARS: usize = 2500;

/// The link to the approver page for this event's hold.
fn link(ev: &HoldEvent, page_url: Option<&str>) -> Option<String> {
    page_url.map(|u| format!("{u}#hold-{}", ev.hold.id))
}

fn timestamp(at: u64) -> String {
    i64::try_from(at)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The request body for `format`.
pub fn render(format: WebhookFormat, ev: &HoldEvent, page_url: Option<&str>) -> Value {
    match format {
        WebhookFormat::Json => generic(ev, page_url),
        WebhookFormat::Slack => slack(ev, page_url),
    }
}

/// `{"event", "at", "hold": {…the hold's fields…}, "approver", "reason", "url"}`.
pub fn generic(ev: &HoldEvent, page_url: Option<&str>) -> Value {
    json!({
        "event": ev.kind.as_str(),
        "at": timestamp(ev.at),
        "hold": ev.hold,
        "approver": ev.approver,
        "reason": ev.reason,
        "url": link(ev, page_url),
    })
}

/// Slack's mrkdwn needs only these three escaped.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One line saying what happened.
pub fn headline(ev: &HoldEvent) -> String {
    let h = &ev.hold;
    let by = ev.approver.as_deref().unwrap_or("?");
    let reason = ev
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    match ev.kind {
        HoldEventKind::Hold => format!(
            "pgwarden: #{} held for approval: {} on target {} (rule {})",
            h.id,
            h.user,
            h.target,
            h.rule.as_deref().unwrap_or("-")
        ),
        HoldEventKind::Approve => format!("pgwarden: #{} approved by {by}", h.id),
        HoldEventKind::Deny => format!("pgwarden: #{} denied by {by}{reason}", h.id),
        HoldEventKind::Expire => format!("pgwarden: #{} expired without a decision", h.id),
        HoldEventKind::Withdraw => format!("pgwarden: #{} withdrawn{reason}", h.id),
    }
}

pub fn slack(ev: &HoldEvent, page_url: Option<&str>) -> Value {
    let h = &ev.hold;
    let text = headline(ev);
    let mut sql: String = h.sql.chars().take(SLACK_SQL_CHARS).collect();
    if sql.len() < h.sql.len() {
        sql.push_str("\n…");
    }
    // A ``` inside the statement would end the code block early.
    let sql = esc(&sql).replace("```", "`\u{200b}``");
    let mut head = format!("*{}*", esc(&text));
    if let Some(url) = link(ev, page_url) {
        head.push_str(&format!("\n<{}|Open the approver page>", esc(&url)));
    }
    let context = format!(
        "{} · {} · from {} → target {} · database {} · rule {} · {}",
        h.user,
        if h.application.is_empty() {
            "-"
        } else {
            &h.application
        },
        if h.client.is_empty() { "-" } else { &h.client },
        h.target,
        h.database,
        h.rule.as_deref().unwrap_or("-"),
        h.classes.join(", ")
    );
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": head}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{sql}```")}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": esc(&context)}]}),
    ];
    // What the statement was measured to change, when pgwarden measured it.
    if let Some(impact) = &h.impact {
        let impact: String = impact.chars().take(SLACK_SQL_CHARS).collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": format!("*Impact:* {}", esc(&impact))}}));
    }
    // What a DROP or TRUNCATE would destroy, when pgwarden read it.
    if let Some(blast) = &h.blast {
        let blast: String = blast.chars().take(SLACK_SQL_CHARS).collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": format!("*Would destroy:* {}", esc(&blast))}}));
    }
    json!({ "text": text, "blocks": blocks })
}

/// `X-Pgwarden-Signature`: `sha256=` and the hex HMAC-SHA256 of `TIMESTAMP.BODY`
/// under the webhook's secret, where TIMESTAMP is the `X-Pgwarden-Timestamp` header
/// (Unix seconds), so a receiver can refuse replays of old deliveries.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let mac = crate::sign::hmac_sha256(secret, &[ts.as_bytes(), b".", body]);
    format!("sha256={}", hex::encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hold::HoldInfo;

    fn event(kind: HoldEventKind, sql: &str) -> HoldEvent {
        HoldEvent {
            kind,
            hold: HoldInfo {
                id: 7,
                session: 3,
                user: "bob".into(),
                database: "app".into(),
                application: "psql".into(),
                client: "10.0.0.5:50000".into(),
                target: "prod".into(),
                sql: sql.into(),
                classes: vec!["drop.table".into()],
                rule: Some("drops".into()),
                timeout_seconds: 600,
                ..HoldInfo::default()
            },
            approver: (kind == HoldEventKind::Deny).then(|| "alice".into()),
            reason: (kind == HoldEventKind::Deny).then(|| "not <now>".into()),
            at: 1_800_000_000,
        }
    }

    #[test]
    fn generic_body_has_the_holds_fields_and_a_link() {
        let v = generic(
            &event(HoldEventKind::Hold, "DROP TABLE t"),
            Some("https://pgw/ui"),
        );
        assert_eq!(v["event"], "hold");
        assert_eq!(v["at"], "2027-01-15T08:00:00Z");
        assert_eq!(v["hold"]["id"], 7);
        assert_eq!(v["hold"]["sql"], "DROP TABLE t");
        assert_eq!(v["hold"]["user"], "bob");
        assert_eq!(v["hold"]["client"], "10.0.0.5:50000");
        assert_eq!(v["hold"]["timeout_seconds"], 600);
        assert_eq!(v["url"], "https://pgw/ui#hold-7");
        assert_eq!(
            generic(&event(HoldEventKind::Hold, "x"), None)["url"],
            Value::Null
        );
    }

    #[test]
    fn headlines() {
        let cases = [
            (
                HoldEventKind::Hold,
                "pgwarden: #7 held for approval: bob on target prod (rule drops)",
            ),
            (
                HoldEventKind::Deny,
                "pgwarden: #7 denied by alice: not <now>",
            ),
            (
                HoldEventKind::Expire,
                "pgwarden: #7 expired without a decision",
            ),
        ];
        for (kind, want) in cases {
            assert_eq!(headline(&event(kind, "x")), want);
        }
    }

    #[test]
    fn slack_body_escapes_and_cuts() {
        let long = format!("DROP TABLE a; -- ```{}", "x".repeat(4000));
        let v = slack(&event(HoldEventKind::Deny, &long), Some("https://pgw/ui"));
        assert_eq!(v["text"], "pgwarden: #7 denied by alice: not <now>");
        let head = v["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(head.contains("not &lt;now&gt;"), "{head}");
        assert!(head.contains("<https://pgw/ui#hold-7|Open the approver page>"));
        let code = v["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(code.starts_with("```DROP TABLE a;") && code.ends_with("…```"));
        assert!(code.chars().count() < 3000);
        assert_eq!(
            code.matches("```").count(),
            2,
            "the SQL cannot end the block"
        );
        assert_eq!(v["blocks"][2]["type"], "context");
        assert_eq!(
            v["blocks"].as_array().map(Vec::len),
            Some(3),
            "no impact known"
        );
    }

    #[test]
    fn both_bodies_carry_the_measured_impact() {
        let mut ev = event(HoldEventKind::Hold, "DELETE FROM t WHERE id > 10");
        ev.hold.impact = Some("would delete 10 of 20 rows of public.t (50 %)".into());
        let v = generic(&ev, None);
        assert_eq!(
            v["hold"]["impact"],
            "would delete 10 of 20 rows of public.t (50 %)"
        );
        let s = slack(&ev, None);
        assert_eq!(
            s["blocks"][3]["text"]["text"],
            "*Impact:* would delete 10 of 20 rows of public.t (50 %)"
        );
    }

    #[test]
    fn both_bodies_carry_the_blast_radius() {
        let mut ev = event(HoldEventKind::Hold, "DROP TABLE t CASCADE");
        ev.hold.blast =
            Some("would drop public.t (5 rows) and 1 dependent object (view public.<v>)".into());
        let v = generic(&ev, None);
        assert_eq!(
            v["hold"]["blast"],
            "would drop public.t (5 rows) and 1 dependent object (view public.<v>)"
        );
        assert_eq!(v["hold"].get("impact"), None);
        let s = slack(&ev, None);
        assert_eq!(
            s["blocks"][3]["text"]["text"],
            "*Would destroy:* would drop public.t (5 rows) and 1 dependent object (view public.&lt;v&gt;)"
        );
    }

    #[test]
    fn signature_is_hmac_of_timestamp_and_body() {
        let s = signature(b"key", 1_800_000_000, b"{}");
        let want = crate::sign::hmac_sha256(b"key", &[b"1800000000.{}"]);
        assert_eq!(s, format!("sha256={}", hex::encode(want)));
    }
}
