//! Remote commands, built argument by argument. Every argument is escaped for a POSIX shell by
//! construction: characters from a small allowlist pass as they are, anything else is wrapped
//! in single quotes. There is no way to splice raw text into the command line, so a device
//! name, user name or path can never be executed. Secrets go over stdin, never here.

use std::fmt;

/// A command line for the remote shell.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    rendered: String,
}

/// Characters that need no quoting in any POSIX shell context we use.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '-' | '.' | '/' | ':' | '=' | '@' | '%' | '+' | ',')
}

/// Quotes one argument: `it's` becomes `'it'\''s'`.
pub fn quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(is_plain) {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

impl RemoteCommand {
    pub fn new(program: &str) -> RemoteCommand {
        RemoteCommand {
            rendered: quote(program),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<str>) -> RemoteCommand {
        self.rendered.push(' ');
        self.rendered.push_str(&quote(arg.as_ref()));
        self
    }

    pub fn args<I, S>(mut self, args: I) -> RemoteCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    /// A fixed shell script (a constant in our code, never user data) run by `sh -c`, with
    /// user data passed as positional parameters `$1`, `$2`, … where the script can only ever
    /// treat them as data.
    pub fn script<I, S>(script: &'static str, params: I) -> RemoteCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RemoteCommand::new("sh")
            .arg("-c")
            .arg(script)
            .arg("homelab")
            .args(params)
    }

    /// The same command run as root through sudo: `-n` never prompts; with `password_on_stdin`
    /// sudo reads the password as the first line of stdin (`-S`) without printing a prompt.
    /// The command is already escaped, so prefixing it keeps every argument data.
    pub fn run_as_root(self, password_on_stdin: bool) -> RemoteCommand {
        let sudo = if password_on_stdin {
            "sudo -S -p '' -- "
        } else {
            "sudo -n -- "
        };
        let mut rendered = String::from(sudo);
        rendered.push_str(&self.rendered);
        RemoteCommand { rendered }
    }

    /// The command line sent to the device.
    pub fn as_str(&self) -> &str {
        &self.rendered
    }
}

impl fmt::Debug for RemoteCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rendered)
    }
}

impl fmt::Display for RemoteCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rendered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("docker"), "docker");
        assert_eq!(quote("/var/run/docker.sock"), "/var/run/docker.sock");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$(touch /tmp/x)"), "'$(touch /tmp/x)'");
        assert_eq!(quote("a\nb"), "'a\nb'");
        assert_eq!(quote("`id`;rm -rf /"), "'`id`;rm -rf /'");
    }

    #[test]
    fn building() {
        let c = RemoteCommand::new("docker")
            .arg("ps")
            .arg("--format")
            .arg("{{.Names}}");
        assert_eq!(c.as_str(), "docker ps --format '{{.Names}}'");
        let s = RemoteCommand::script("echo \"$1\"", ["x y"]);
        assert_eq!(s.as_str(), "sh -c 'echo \"$1\"' homelab 'x y'");
        assert_eq!(
            s.clone().run_as_root(false).as_str(),
            "sudo -n -- sh -c 'echo \"$1\"' homelab 'x y'"
        );
        assert_eq!(
            s.run_as_root(true).as_str(),
            "sudo -S -p '' -- sh -c 'echo \"$1\"' homelab 'x y'"
        );
    }
}
