//! CloudWatch Logs naming rules and the placeholders allowed in log group and
//! stream names (`{hostname}`, `{job}`, `{task_id}`, `{instance_id}`), checked
//! at load time so a bad name never reaches the delivery stage.

/// Longest log group or log stream name CloudWatch accepts, in characters.
pub const MAX_NAME_CHARS: usize = 512;

/// The placeholders a log group or stream template may use.
pub const PLACEHOLDERS: &[&str] = &["hostname", "job", "task_id", "instance_id"];

/// The values placeholders expand to for one job.
#[derive(Debug, Clone, Copy)]
pub struct PlaceholderValues<'a> {
    /// `{hostname}`: the host's name.
    pub hostname: &'a str,
    /// `{job}`: the job's name.
    pub job: &'a str,
    /// `{task_id}`: the orchestrator's task id, when known.
    pub task_id: Option<&'a str>,
    /// `{instance_id}`: the machine's instance id, when known.
    pub instance_id: Option<&'a str>,
}

/// Expands `{placeholder}`s in `template` (`{{` and `}}` stand for literal braces).
pub fn expand(template: &str, values: &PlaceholderValues<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err("unmatched '}'; write '}}' for a literal brace".to_string()),
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => {
                            return Err(format!(
                                "unclosed placeholder '{{{name}'; write '{{{{' for a literal brace"
                            ));
                        }
                    }
                }
                let value = match name.as_str() {
                    "hostname" => Some(values.hostname),
                    "job" => Some(values.job),
                    "task_id" => Some(values.task_id.ok_or(
                        "placeholder {task_id} has no value on this host; set CWPUB_TASK_ID (or run on ECS) or remove it",
                    )?),
                    "instance_id" => Some(values.instance_id.ok_or(
                        "placeholder {instance_id} has no value on this host; set CWPUB_INSTANCE_ID or remove it",
                    )?),
                    _ => None,
                };
                match value {
                    Some(v) => out.push_str(v),
                    None => {
                        let known: Vec<String> =
                            PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect();
                        return Err(format!(
                            "unknown placeholder {{{name}}}; known placeholders are {} (write '{{{{' for a literal brace)",
                            known.join(", ")
                        ));
                    }
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Checks a log group name: 1–512 characters from `[.\-_/#A-Za-z0-9]`, not starting with `aws/`.
pub fn check_log_group(name: &str) -> Result<(), String> {
    check_length(name)?;
    if let Some((pos, bad)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#')))
    {
        return Err(format!(
            "invalid log group name: character {bad:?} at position {} is not allowed; use only A-Z a-z 0-9 . - _ / #",
            pos + 1
        ));
    }
    if name.starts_with("aws/") {
        return Err(
            "invalid log group name: names starting with \"aws/\" are reserved for AWS services"
                .to_string(),
        );
    }
    Ok(())
}

/// Checks a log stream name: 1–512 characters, no `:` or `*`, no control characters.
pub fn check_log_stream(name: &str) -> Result<(), String> {
    check_length(name)?;
    if let Some((pos, bad)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| matches!(c, ':' | '*') || c.is_control())
    {
        return Err(format!(
            "invalid log stream name: character {bad:?} at position {} is not allowed; log stream names cannot contain ':', '*' or control characters",
            pos + 1
        ));
    }
    Ok(())
}

fn check_length(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 {
        return Err("name is empty; it must be 1 to 512 characters".to_string());
    }
    if n > MAX_NAME_CHARS {
        return Err(format!(
            "name is {n} characters long; the limit is {MAX_NAME_CHARS}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: PlaceholderValues<'static> = PlaceholderValues {
        hostname: "web-1",
        job: "hb",
        task_id: Some("abc"),
        instance_id: None,
    };

    #[test]
    fn expands_known_placeholders_and_escapes() {
        assert_eq!(
            expand("{hostname}-{job}/{task_id}", &V).unwrap(),
            "web-1-hb/abc"
        );
        assert_eq!(expand("a{{b}}c", &V).unwrap(), "a{b}c");
        assert!(
            expand("{nope}", &V)
                .unwrap_err()
                .contains("unknown placeholder {nope}")
        );
        assert!(
            expand("{instance_id}", &V)
                .unwrap_err()
                .contains("CWPUB_INSTANCE_ID")
        );
        assert!(expand("{job", &V).unwrap_err().contains("unclosed"));
        assert!(expand("job}", &V).unwrap_err().contains("unmatched"));
    }

    #[test]
    fn group_rules() {
        assert!(check_log_group("/cwpub/heartbeat#1_a.b-c").is_ok());
        assert!(check_log_group("").is_err());
        assert!(check_log_group(&"a".repeat(512)).is_ok());
        assert!(
            check_log_group(&"a".repeat(513))
                .unwrap_err()
                .contains("513")
        );
        assert!(
            check_log_group("/cwpub/heart beat")
                .unwrap_err()
                .contains("' ' at position 13")
        );
        assert!(
            check_log_group("aws/lambda/x")
                .unwrap_err()
                .contains("reserved")
        );
    }

    #[test]
    fn stream_rules() {
        assert!(check_log_stream("web-1 heartbeat/ä").is_ok());
        assert!(check_log_stream("a:b").unwrap_err().contains("':'"));
        assert!(check_log_stream("a*").is_err());
        assert!(check_log_stream(&"s".repeat(513)).is_err());
    }
}
