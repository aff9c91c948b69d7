//! The placeholders allowed in log group and stream names (`{hostname}`,
//! `{job}`, `{task_id}`, `{instance_id}`). The names themselves are checked by
//! the CloudWatch sink's rules ([`check_log_group`], [`check_log_stream`]) at
//! load time, so a bad name never reaches delivery.

pub use crate::sinks::cloudwatch::limits::{MAX_NAME_CHARS, check_log_group, check_log_stream};

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
