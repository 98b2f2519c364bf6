//! Who runs a `pgwarden trash` command, for its audit record: the operating-system
//! account (from the process's uid, named through the passwd file) and the host.
//! [`passwd_name`] is pure; [`os_account`] and [`host`] read the system.

/// The account name of `uid` in passwd-format `text` (`name:x:uid:gid:...`).
pub fn passwd_name(text: &str, uid: u32) -> Option<String> {
    text.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        let id: u32 = f.next()?.trim().parse().ok()?;
        (id == uid && !name.is_empty() && !name.starts_with('#')).then(|| name.to_string())
    })
}

/// The process's effective uid and its account name (`uid N` when the passwd
/// file does not name it, e.g. a directory-service account).
#[cfg(unix)]
pub fn os_account() -> Result<(String, u32), String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")
        .map_err(|e| format!("cannot tell which account runs this command: {e}"))?
        .uid();
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| passwd_name(&t, uid))
        .unwrap_or_else(|| format!("uid {uid}"));
    Ok((name, uid))
}

#[cfg(not(unix))]
pub fn os_account() -> Result<(String, u32), String> {
    Err("cannot tell which account runs this command on this system".into())
}

/// The machine's host name (`unknown` when it cannot be read).
pub fn host() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            let s = std::fs::read_to_string(p).ok()?;
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::passwd_name;

    #[test]
    fn names_the_uid_from_passwd_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    # comment:x:5:5\n\
                    broken\n\
                    alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
                    bob:x:10000:10000::/home/bob:/bin/sh\n";
        let cases = [
            (0, Some("root")),
            (1000, Some("alice")),
            (10000, Some("bob")),
            (100, None),
            (5, None),
        ];
        for (uid, want) in cases {
            assert_eq!(passwd_name(text, uid).as_deref(), want, "uid {uid}");
        }
    }
}
