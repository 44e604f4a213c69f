//! Compose-style variable interpolation: `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `$$`
//! for a literal dollar. Only what the Compose Specification defines; nothing is executed.

use std::collections::BTreeMap;

/// A variable a Compose file refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub has_default: bool,
}

fn scan(
    text: &str,
    mut each: impl FnMut(&str, Option<&str>) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| "an unclosed ${ in the file".to_string())?;
            let expr = &body[..end];
            let (name, default) = match expr.find(":-").or_else(|| expr.find('-')) {
                Some(p) => {
                    let skip = if expr[p..].starts_with(":-") { 2 } else { 1 };
                    (&expr[..p], Some(&expr[p + skip..]))
                }
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("“${{{expr}}}” is not a variable name"));
            }
            out.push_str(&each(name, default)?);
            rest = &body[end + 1..];
        } else {
            let len = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .count();
            if len == 0 {
                return Err("a lone $ (write $$ for a literal dollar)".into());
            }
            out.push_str(&each(&after[..len], None)?);
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Every variable referenced in `text`.
pub fn variables(text: &str) -> Result<Vec<Variable>, String> {
    let mut vars = Vec::new();
    scan(text, |name, default| {
        vars.push(Variable {
            name: name.to_string(),
            has_default: default.is_some(),
        });
        Ok(String::new())
    })?;
    Ok(vars)
}

/// Fills in `values`; a variable without a value uses its default, or is an error.
pub fn interpolate(text: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    scan(text, |name, default| match (values.get(name), default) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(d)) => Ok(d.to_string()),
        (None, None) => Err(format!("${{{name}}} has no value")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates() {
        let v = BTreeMap::from([("A".to_string(), "1".to_string())]);
        assert_eq!(interpolate("x${A}y", &v).unwrap(), "x1y");
        assert_eq!(interpolate("${B:-9}", &v).unwrap(), "9");
        assert_eq!(interpolate("${B-9}", &v).unwrap(), "9");
        assert_eq!(interpolate("$$A", &v).unwrap(), "$A");
        assert_eq!(interpolate("$A", &v).unwrap(), "1");
        assert!(interpolate("${C}", &v).is_err());
        assert!(interpolate("${A", &v).is_err());
        assert_eq!(
            variables("${A} ${B:-x} $$C").unwrap(),
            vec![
                Variable {
                    name: "A".into(),
                    has_default: false
                },
                Variable {
                    name: "B".into(),
                    has_default: true
                },
            ]
        );
    }
}
