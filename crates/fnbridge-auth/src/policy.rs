//! RAM policy documents: `{"Version":"1","Statement":[{"Effect","Action","Resource"}]}` with `*`
//! and `?` wildcards. Parsed and checked when a role is created; evaluated as RAM does: an
//! explicit `Deny` wins, otherwise an `Allow` is needed, otherwise denied.

use serde_json::Value;

/// A policy document's size limit (RAM's for a custom policy).
pub const MAX_POLICY_BYTES: usize = 6144;
/// Statements per policy, and actions or resources per statement.
pub const MAX_STATEMENTS: usize = 100;
pub const MAX_ITEMS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    allow: bool,
    /// Lower-case: RAM action names are case-insensitive.
    actions: Vec<String>,
    resources: Vec<String>,
}

impl Policy {
    /// Parses and checks a policy document; the error names the offending field.
    pub fn parse(text: &str) -> Result<Policy, String> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(format!(
                "policy: {} bytes, more than the {MAX_POLICY_BYTES}-byte limit",
                text.len()
            ));
        }
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("policy: not valid JSON: {e}"))?;
        let Value::Object(doc) = v else {
            return Err("policy: must be a JSON object with a Statement list".into());
        };
        for k in doc.keys() {
            if k != "Version" && k != "Statement" {
                return Err(format!(
                    "policy: unknown field '{k}' (expected Version, Statement)"
                ));
            }
        }
        match doc.get("Version") {
            None => {}
            Some(Value::String(s)) if s == "1" => {}
            Some(other) => return Err(format!("policy.Version: must be \"1\", not {other}")),
        }
        let statements = match doc.get("Statement") {
            Some(Value::Array(a)) => a.clone(),
            Some(o @ Value::Object(_)) => vec![o.clone()],
            _ => return Err("policy.Statement: required, a list of statements".into()),
        };
        if statements.len() > MAX_STATEMENTS {
            return Err(format!(
                "policy.Statement: {} statements, more than {MAX_STATEMENTS}",
                statements.len()
            ));
        }
        let statements = statements
            .iter()
            .enumerate()
            .map(|(i, s)| statement(i, s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy { statements })
    }

    /// Whether `action` (`fc:InvokeFunction`) on `resource` (an ARN) is allowed.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        let action = action.to_ascii_lowercase();
        let applies = |s: &Statement| {
            s.actions.iter().any(|a| wildcard(a, &action))
                && s.resources.iter().any(|r| wildcard(r, resource))
        };
        if self.statements.iter().any(|s| !s.allow && applies(s)) {
            return false;
        }
        self.statements.iter().any(|s| s.allow && applies(s))
    }
}

fn statement(i: usize, v: &Value) -> Result<Statement, String> {
    let field = format!("policy.Statement[{i}]");
    let Value::Object(o) = v else {
        return Err(format!("{field}: must be an object"));
    };
    for k in o.keys() {
        match k.as_str() {
            "Effect" | "Action" | "Resource" => {}
            "Condition" | "NotAction" | "NotResource" | "Principal" => {
                return Err(format!("{field}.{k}: not supported by fnbridge"));
            }
            _ => return Err(format!("{field}: unknown field '{k}'")),
        }
    }
    let allow = match o.get("Effect").and_then(Value::as_str) {
        Some("Allow") => true,
        Some("Deny") => false,
        _ => return Err(format!("{field}.Effect: required, Allow or Deny")),
    };
    let list = |name: &str| -> Result<Vec<String>, String> {
        let items = match o.get(name) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{field}.{name}: every item must be a string"))
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(format!(
                    "{field}.{name}: required, a string or a list of strings"
                ));
            }
        };
        if items.is_empty() || items.len() > MAX_ITEMS || items.iter().any(|s| s.is_empty()) {
            return Err(format!(
                "{field}.{name}: between 1 and {MAX_ITEMS} non-empty strings"
            ));
        }
        Ok(items)
    };
    let actions = list("Action")?;
    for a in &actions {
        if a != "*" && !a.contains(':') {
            return Err(format!(
                "{field}.Action: '{a}' is not of the form service:Action (fc:InvokeFunction, fc:*)"
            ));
        }
    }
    Ok(Statement {
        allow,
        actions: actions.iter().map(|a| a.to_ascii_lowercase()).collect(),
        resources: list("Resource")?,
    })
}

/// `*` matches any run of characters, `?` one. Iterative with one backtrack point, so linear
/// in practice and never recursive, whatever the pattern.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const FN: &str = "acs:fc:cn-hangzhou:123:functions/f";

    #[test]
    fn deny_wins_and_allow_is_needed() {
        let p = Policy::parse(
            r#"{"Version":"1","Statement":[
                {"Effect":"Allow","Action":["fc:Get*","fc:InvokeFunction"],"Resource":"*"},
                {"Effect":"Deny","Action":"fc:InvokeFunction","Resource":"acs:fc:*:*:functions/secret"}]}"#,
        )
        .unwrap();
        assert!(p.allows("fc:GetFunction", FN));
        assert!(
            p.allows("FC:getfunction", FN),
            "actions are case-insensitive"
        );
        assert!(p.allows("fc:InvokeFunction", FN));
        assert!(!p.allows(
            "fc:InvokeFunction",
            "acs:fc:cn-hangzhou:123:functions/secret"
        ));
        assert!(!p.allows("fc:DeleteFunction", FN));
        assert!(!p.allows("oss:GetObject", "acs:oss:*:*:b/k"));
        let all =
            Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
                .unwrap();
        assert!(all.allows("oss:GetObject", "x"));
        let none = Policy::parse(r#"{"Statement":[]}"#).unwrap();
        assert!(!none.allows("fc:GetFunction", FN));
    }

    #[test]
    fn bad_documents_name_the_field() {
        for (doc, needle) in [
            ("[]", "JSON object"),
            ("{", "not valid JSON"),
            (
                r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
                "Effect",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
                "Action",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"fc","Resource":"*"}]}"#,
                "service:Action",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":[]}]}"#,
                "Resource",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}]}"#,
                "not supported",
            ),
            (r#"{"Version":"2","Statement":[]}"#, "Version"),
            (r#"{"Statement":[],"Extra":1}"#, "unknown field"),
        ] {
            let e = Policy::parse(doc).unwrap_err();
            assert!(e.contains(needle), "{doc}: {e}");
        }
        let big = format!(
            r#"{{"Statement":[],"Version":"1","x":"{}"}}"#,
            "a".repeat(7000)
        );
        assert!(Policy::parse(&big).unwrap_err().contains("limit"));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*", ""));
        assert!(wildcard("a*c", "abbbc"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(wildcard("acs:fc:*:*:functions/*", FN));
        assert!(!wildcard("acs:fc:*:*:functions/g*", FN));
        assert!(wildcard(&"*a".repeat(50), &"a".repeat(200)));
    }
}
