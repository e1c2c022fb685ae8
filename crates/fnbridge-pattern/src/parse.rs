//! Pattern text to branches: the EventBridge grammar, its validation and its error wording.
//!
//! The pattern is read the way AWS's streaming compiler reads it: fields in source order, each
//! field list written into every current branch (a later occurrence of the same path overrides
//! an earlier one, which is how duplicate keys resolve to "the last wins"), and `$or` forking the
//! branches it is met in.

use std::sync::Arc;

use crate::error::PatternError;
use crate::json::{self, JValue, JsonError};
use crate::limits::{MAX_OR_BRANCHES, MAX_PATTERN_BYTES, MAX_PATTERN_DEPTH, MAX_VALUES_PER_LIST};
use crate::pattern::{AnythingBut, Branch, Condition, F64, Literal, Op, Range};
use crate::value;
use crate::wildcard;

const OR: &str = "$or";

/// Field names AWS reserves inside `$or` objects (operator names and future keywords).
const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

type Rule = Vec<(Arc<str>, Arc<Condition>)>;

/// Parses pattern text into its branches.
pub(crate) fn compile(text: &str) -> Result<Vec<Branch>, PatternError> {
    if text.len() > MAX_PATTERN_BYTES {
        return Err(PatternError::new(
            "",
            format!("pattern is larger than {MAX_PATTERN_BYTES} bytes"),
        ));
    }
    let root = json::parse(text.as_bytes(), MAX_PATTERN_DEPTH).map_err(|e| match e {
        JsonError::TooDeep => PatternError::new(
            "",
            format!("pattern nests deeper than {MAX_PATTERN_DEPTH} levels"),
        ),
        JsonError::Syntax(l) => PatternError::new(
            "",
            format!("invalid json at byte {}: {}", l.offset, l.reason),
        ),
    })?;
    let JValue::Obj(members) = &root else {
        return Err(PatternError::new("", "Filter is not an object"));
    };
    let mut c = Compiler {
        field: Vec::new(),
        display: Vec::new(),
    };
    let mut rules: Vec<Rule> = Vec::new();
    c.object(&mut rules, members, false)?;
    Ok(rules
        .into_iter()
        .map(|rule| {
            let mut conds: Vec<Arc<Condition>> = rule.into_iter().map(|(_, c)| c).collect();
            conds.sort_by(|a, b| a.path.cmp(&b.path));
            Branch { conds }
        })
        .collect())
}

struct Compiler {
    /// Field path segments (joined with `.` to name event fields).
    field: Vec<String>,
    /// The same path for error messages, with `$or[i]` steps.
    display: Vec<String>,
}

fn fail<T>(path: &str, reason: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError::new(path, reason))
}

impl Compiler {
    fn display_with(&self, key: &str) -> String {
        let mut parts: Vec<&str> = self.display.iter().map(String::as_str).collect();
        parts.push(key);
        parts.join(".")
    }

    fn object(
        &mut self,
        rules: &mut Vec<Rule>,
        members: &[(String, JValue)],
        in_or: bool,
    ) -> Result<(), PatternError> {
        if members.is_empty() {
            return fail(&self.display.join("."), "Empty objects are not allowed");
        }
        for (key, value) in members {
            if key == OR {
                self.or(rules, value)?;
                continue;
            }
            let here = self.display_with(key);
            if in_or && RESERVED_IN_OR.contains(&key.as_str()) {
                return fail(
                    &here,
                    format!("{key} is Ruler reserved fieldName which cannot be used inside $or."),
                );
            }
            match value {
                JValue::Obj(inner) => {
                    self.field.push(key.clone());
                    self.display.push(key.clone());
                    let r = self.object(rules, inner, in_or);
                    self.field.pop();
                    self.display.pop();
                    r?;
                }
                JValue::Arr(items) => {
                    let mut name = self.field.join(".");
                    if !self.field.is_empty() {
                        name.push('.');
                    }
                    name.push_str(key);
                    let cond = Arc::new(field_condition(&here, Arc::from(name.as_str()), items)?);
                    if rules.is_empty() {
                        rules.push(Vec::new());
                    }
                    let name: Arc<str> = cond.path.clone();
                    for rule in rules.iter_mut() {
                        match rule.iter_mut().find(|(p, _)| *p == name) {
                            Some(slot) => slot.1 = cond.clone(),
                            None => rule.push((name.clone(), cond.clone())),
                        }
                    }
                }
                _ => return fail(&here, format!("\"{key}\" must be an object or an array")),
            }
        }
        Ok(())
    }

    fn or(&mut self, rules: &mut Vec<Rule>, value: &JValue) -> Result<(), PatternError> {
        let here = self.display_with(OR);
        let JValue::Arr(items) = value else {
            return fail(&here, "It must be an Array followed with $or.");
        };
        let current = std::mem::take(rules);
        for (i, item) in items.iter().enumerate() {
            let JValue::Obj(members) = item else {
                return fail(
                    &here,
                    "Only JSON object is allowed in array of $or relationship.",
                );
            };
            let mut forked = current.clone();
            if forked.is_empty() {
                forked.push(Vec::new());
            }
            self.display.push(format!("{OR}[{i}]"));
            let r = self.object(&mut forked, members, true);
            self.display.pop();
            r?;
            rules.extend(forked);
            if rules.len() > MAX_OR_BRANCHES {
                return fail(
                    &here,
                    format!("$or expands to more than {MAX_OR_BRANCHES} combinations"),
                );
            }
        }
        if items.len() < 2 {
            return fail(
                &here,
                "There must have at least 2 Objects in $or relationship.",
            );
        }
        Ok(())
    }
}

/// Compiles one field's value list.
fn field_condition(
    here: &str,
    path: Arc<str>,
    items: &[JValue],
) -> Result<Condition, PatternError> {
    if items.is_empty() {
        return fail(here, "Empty arrays are not allowed");
    }
    if items.len() > MAX_VALUES_PER_LIST {
        return fail(
            here,
            format!("more than {MAX_VALUES_PER_LIST} values in one list"),
        );
    }
    let mut ops = Vec::with_capacity(items.len());
    for item in items {
        let op = match item {
            JValue::Str(s) => Op::Exact(Literal::Str(s.as_str().into())),
            JValue::Num(t) => Op::Exact(Literal::Num(canon(t))),
            JValue::Bool(b) => Op::Exact(Literal::Bool(*b)),
            JValue::Null => Op::Exact(Literal::Null),
            JValue::Arr(_) => {
                return fail(
                    here,
                    "Match value must be String, number, true, false, or null",
                );
            }
            JValue::Obj(members) => match_expression(here, members)?,
        };
        ops.push(op);
    }
    ops.sort();
    ops.dedup();
    Ok(Condition { path, ops })
}

fn canon(text: &str) -> Box<[u8]> {
    let mut out = Vec::new();
    value::canon_number(text.as_bytes(), &mut out);
    out.into_boxed_slice()
}

fn match_expression(here: &str, members: &[(String, JValue)]) -> Result<Op, PatternError> {
    let Some((name, operand)) = members.first() else {
        return fail(here, "Match expression name not found");
    };
    // The operand is checked before the arity, as AWS's streaming parser meets them.
    let op = match name.as_str() {
        "exactly" => match operand {
            JValue::Str(s) => Op::Exact(Literal::Str(s.as_str().into())),
            _ => return fail(here, "exact match pattern must be a string"),
        },
        "prefix" | "suffix" => affix(here, name, operand)?,
        "equals-ignore-case" => match operand {
            JValue::Str(s) => Op::EqualsIc(value::fold(s).into()),
            _ => return fail(here, "equals-ignore-case match pattern must be a string"),
        },
        "wildcard" => match operand {
            JValue::Str(s) => wildcard_op(here, s)?,
            _ => return fail(here, "wildcard match pattern must be a string"),
        },
        "numeric" => Op::Numeric(numeric(here, operand)?),
        "cidr" => match operand {
            JValue::Str(s) => cidr(here, s)?,
            _ => return fail(here, "cidr match pattern must be a string"),
        },
        "exists" => match operand {
            JValue::Bool(b) => Op::Exists(*b),
            _ => return fail(here, "exists match pattern must be either true or false."),
        },
        "anything-but" => Op::AnythingBut(Arc::new(anything_but(here, operand)?)),
        other => return fail(here, format!("Unrecognized match type {other}")),
    };
    if members.len() > 1 {
        return fail(here, "Only one key allowed in match expression");
    }
    Ok(op)
}

fn affix(here: &str, name: &str, operand: &JValue) -> Result<Op, PatternError> {
    let prefix = name == "prefix";
    match operand {
        JValue::Str(s) => Ok(if prefix {
            Op::Prefix(s.as_str().into())
        } else {
            Op::Suffix(s.as_str().into())
        }),
        JValue::Obj(inner) => {
            let Some((k, v)) = inner.first() else {
                let title = if prefix { "Prefix" } else { "Suffix" };
                return fail(here, format!("{title} expression name not found"));
            };
            if k != "equals-ignore-case" {
                return fail(here, format!("Unsupported {name} pattern: {k}"));
            }
            let JValue::Str(s) = v else {
                return fail(here, "equals-ignore-case match pattern must be a string");
            };
            if inner.len() > 1 {
                return fail(here, "Only one key allowed in match expression");
            }
            let f: Box<str> = value::fold(s).into();
            Ok(if prefix {
                Op::PrefixIc(f)
            } else {
                Op::SuffixIc(f)
            })
        }
        _ => fail(here, format!("{name} match pattern must be a string")),
    }
}

/// A wildcard value, reduced to the cheapest equivalent operator where one exists.
fn wildcard_op(here: &str, s: &str) -> Result<Op, PatternError> {
    let w = wildcard::parse(s).map_err(|r| PatternError::new(here, r))?;
    let lit = |b: &[u8]| -> Box<str> { String::from_utf8_lossy(b).into() };
    Ok(match w.segs.as_slice() {
        [only] => Op::Exact(Literal::Str(lit(only))),
        [p, s] if s.is_empty() => Op::Prefix(lit(p)),
        [p, s] if p.is_empty() => Op::Suffix(lit(s)),
        _ => Op::Wildcard(w),
    })
}

fn numeric_value(here: &str, op_name: &str, v: Option<&JValue>) -> Result<f64, PatternError> {
    let Some(JValue::Num(t)) = v else {
        return fail(here, format!("Value of {op_name} must be numeric"));
    };
    let x = value::number_f64(t.as_bytes());
    if !x.is_finite() {
        return fail(here, format!("Cannot compare number : {t}"));
    }
    Ok(x)
}

fn numeric(here: &str, operand: &JValue) -> Result<Range, PatternError> {
    let JValue::Arr(items) = operand else {
        return fail(here, "Value of numeric must be an array.");
    };
    let first = match items.first() {
        None => return fail(here, "Invalid member in numeric match: ]"),
        Some(JValue::Str(s)) => s.as_str(),
        Some(other) => {
            return fail(
                here,
                format!("Invalid member in numeric match: {}", other.token()),
            );
        }
    };
    let name = |op: &str| {
        if op == "=" {
            "equals".to_string()
        } else {
            op.to_string()
        }
    };
    let inf = f64::INFINITY;
    let x = match first {
        "=" | "<" | "<=" | ">" | ">=" => numeric_value(here, &name(first), items.get(1))?,
        other => {
            return fail(
                here,
                format!("Unrecognized numeric range operator: {other}"),
            );
        }
    };
    let lower_open = match first {
        "=" | "<" | "<=" => {
            if items.len() > 2 {
                return fail(here, "Too many elements in numeric expression");
            }
            return Ok(match first {
                "=" => Range {
                    lo: F64(x),
                    lo_open: false,
                    hi: F64(x),
                    hi_open: false,
                },
                "<" => Range {
                    lo: F64(-inf),
                    lo_open: false,
                    hi: F64(x),
                    hi_open: true,
                },
                _ => Range {
                    lo: F64(-inf),
                    lo_open: false,
                    hi: F64(x),
                    hi_open: false,
                },
            });
        }
        ">" => true,
        _ => false,
    };
    if items.len() == 2 {
        return Ok(Range {
            lo: F64(x),
            lo_open: lower_open,
            hi: F64(inf),
            hi_open: false,
        });
    }
    let second = match &items[2] {
        JValue::Str(s) => s.as_str(),
        other => {
            return fail(
                here,
                format!("Bad value in numeric range: {}", other.token()),
            );
        }
    };
    let upper_open = match second {
        "<" => true,
        "<=" => false,
        other => return fail(here, format!("Bad numeric range operator: {other}")),
    };
    let top = numeric_value(here, second, items.get(3))?;
    if items.len() > 4 {
        return fail(here, "Too many terms in numeric range expression");
    }
    if x >= top {
        return fail(here, "Bottom must be less than top");
    }
    Ok(Range {
        lo: F64(x),
        lo_open: lower_open,
        hi: F64(top),
        hi_open: upper_open,
    })
}

fn cidr(here: &str, s: &str) -> Result<Op, PatternError> {
    let mut parts = s.split('/');
    let (Some(addr), Some(mask), None) = (parts.next(), parts.next(), parts.next()) else {
        return fail(here, "Malformed CIDR, one '/' required");
    };
    if mask.is_empty() || mask.len() > 3 || !mask.bytes().all(|c| c.is_ascii_digit()) {
        return fail(here, "Malformed CIDR, mask bits must be an integer");
    }
    let bits: u32 = mask.parse().unwrap_or(u32::MAX);
    let ip: std::net::IpAddr = match addr.parse() {
        Ok(ip) => ip,
        Err(_) => return fail(here, format!("Invalid IP address: {addr}")),
    };
    let (bits, max) = match ip {
        std::net::IpAddr::V4(_) => (bits.saturating_add(96), 32 + 96),
        std::net::IpAddr::V6(_) => (bits, 128),
    };
    if bits > max {
        let fam = if max == 128 {
            "IPv6 mask bits must be <= 128"
        } else {
            "IPv4 mask bits must be <= 32"
        };
        return fail(here, fam);
    }
    let base = value::ip_to_u128(ip);
    let host_mask: u128 = if bits >= 128 { 0 } else { u128::MAX >> bits };
    Ok(Op::Cidr(base & !host_mask, base | host_mask))
}

fn anything_but(here: &str, operand: &JValue) -> Result<AnythingBut, PatternError> {
    const BAD_OPERAND: &str =
        "Value of anything-but must be an array or single string/number value.";
    match operand {
        JValue::Str(s) => Ok(AnythingBut::Strings(vec![s.as_str().into()])),
        JValue::Num(t) => Ok(AnythingBut::Numbers(vec![canon(t)])),
        JValue::Arr(items) => {
            if items.len() > MAX_VALUES_PER_LIST {
                return fail(
                    here,
                    format!("more than {MAX_VALUES_PER_LIST} values in one list"),
                );
            }
            let mut strs: Vec<Box<str>> = Vec::new();
            let mut nums: Vec<Box<[u8]>> = Vec::new();
            for item in items {
                match item {
                    JValue::Str(s) => strs.push(s.as_str().into()),
                    JValue::Num(t) => nums.push(canon(t)),
                    _ => {
                        return fail(
                            here,
                            "Inside anything but list, start|null|boolean is not supported.",
                        );
                    }
                }
            }
            if strs.is_empty() == nums.is_empty() {
                return fail(
                    here,
                    "Inside anything but list, either all values are number or string, mixed type is not supported",
                );
            }
            Ok(if nums.is_empty() {
                AnythingBut::Strings(sorted(strs))
            } else {
                AnythingBut::Numbers(sorted(nums))
            })
        }
        JValue::Obj(inner) => {
            let Some((k, v)) = inner.first() else {
                return fail(here, "Anything-But expression name not found");
            };
            if !matches!(
                k.as_str(),
                "equals-ignore-case" | "prefix" | "suffix" | "wildcard"
            ) {
                return fail(here, format!("Unsupported anything-but pattern: {k}"));
            }
            let values: Vec<&JValue> = match v {
                JValue::Arr(items) => items.iter().collect(),
                other => vec![other],
            };
            if values.is_empty() {
                // AWS accepts an empty nested list and then excludes nothing; an anything-but that
                // excludes nothing is almost surely a mistake, so it is refused here.
                return fail(here, "Empty arrays are not allowed");
            }
            if values.len() > MAX_VALUES_PER_LIST {
                return fail(
                    here,
                    format!("more than {MAX_VALUES_PER_LIST} values in one list"),
                );
            }
            let mut strs = Vec::with_capacity(values.len());
            for value in values {
                match value {
                    JValue::Str(s) => strs.push(s.as_str()),
                    JValue::Bool(_) | JValue::Null | JValue::Obj(_) | JValue::Arr(_) => {
                        return fail(here, BAD_OPERAND);
                    }
                    JValue::Num(_) => {
                        return fail(
                            here,
                            match k.as_str() {
                                "equals-ignore-case" => {
                                    "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
                                }
                                "wildcard" => "wildcard match pattern must be a string",
                                _ => "prefix/suffix match pattern must be a string",
                            },
                        );
                    }
                }
            }
            if inner.len() > 1 {
                return fail(here, "Only one key allowed in match expression");
            }
            match k.as_str() {
                "equals-ignore-case" => Ok(AnythingBut::IgnoreCase(sorted(
                    strs.iter().map(|s| value::fold(s).into()).collect(),
                ))),
                "prefix" | "suffix" => {
                    if strs.iter().any(|s| s.is_empty()) {
                        return fail(here, "Null prefix/suffix not allowed");
                    }
                    let list = sorted(strs.iter().map(|s| Box::<str>::from(*s)).collect());
                    Ok(if k == "prefix" {
                        AnythingBut::Prefixes(list)
                    } else {
                        AnythingBut::Suffixes(list)
                    })
                }
                _ => {
                    let mut ws = Vec::with_capacity(strs.len());
                    for s in strs {
                        ws.push(wildcard::parse(s).map_err(|r| PatternError::new(here, r))?);
                    }
                    Ok(AnythingBut::Wildcards(sorted(ws)))
                }
            }
        }
        JValue::Bool(_) | JValue::Null => fail(here, BAD_OPERAND),
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}
