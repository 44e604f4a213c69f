//! The states of a deployment and of a deployed app: the words stored in the database for
//! each, and the words the progress bar shows. A leaf module: the store reads and writes these,
//! the deploy engine moves them, the web pages show them, and none of those depends on another
//! for it.

use std::fmt;

/// Where a deployment got to. Stored as its `as_str` word; those words never change, so a
/// database written by an earlier version reads back the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentState {
    Validating,
    Preparing,
    /// The app's name on the owner's DNS.
    Naming,
    Pulling,
    Starting,
    Configuring,
    HealthCheck,
    /// Its certificate and the proxy's route, checked through the proxy.
    Securing,
    Running,
    Failed,
    RollingBack,
    RolledBack,
    /// Written by earlier versions for a removal; still read.
    Removing,
    /// Written by earlier versions for a finished removal; still read.
    Done,
}

impl DeploymentState {
    /// Every state, for parsing.
    const ALL: [DeploymentState; 14] = [
        DeploymentState::Validating,
        DeploymentState::Preparing,
        DeploymentState::Naming,
        DeploymentState::Securing,
        DeploymentState::Pulling,
        DeploymentState::Starting,
        DeploymentState::Configuring,
        DeploymentState::HealthCheck,
        DeploymentState::Running,
        DeploymentState::Failed,
        DeploymentState::RollingBack,
        DeploymentState::RolledBack,
        DeploymentState::Removing,
        DeploymentState::Done,
    ];

    /// The states after which a deployment no longer changes by itself.
    pub const FINISHED: [DeploymentState; 3] = [
        DeploymentState::Running,
        DeploymentState::RolledBack,
        DeploymentState::Done,
    ];

    /// The stored word.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeploymentState::Validating => "validating",
            DeploymentState::Preparing => "preparing",
            DeploymentState::Naming => "naming",
            DeploymentState::Securing => "securing",
            DeploymentState::Pulling => "pulling",
            DeploymentState::Starting => "starting",
            DeploymentState::Configuring => "configuring",
            DeploymentState::HealthCheck => "health_check",
            DeploymentState::Running => "running",
            DeploymentState::Failed => "failed",
            DeploymentState::RollingBack => "rolling_back",
            DeploymentState::RolledBack => "rolled_back",
            DeploymentState::Removing => "removing",
            DeploymentState::Done => "done",
        }
    }

    /// From the stored word.
    pub fn parse(s: &str) -> Option<DeploymentState> {
        DeploymentState::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Words for the progress bar.
    pub const fn words(self) -> &'static str {
        match self {
            DeploymentState::Validating => "Checking requirements",
            DeploymentState::Preparing => "Preparing files",
            DeploymentState::Naming => "Giving it a name",
            DeploymentState::Securing => "Securing it with HTTPS",
            DeploymentState::Pulling => "Downloading the app",
            DeploymentState::Starting => "Starting the app",
            DeploymentState::Configuring => "Saving the app",
            DeploymentState::HealthCheck => "Waiting for the app to answer",
            DeploymentState::Running => "Running",
            DeploymentState::Failed => "Failed",
            DeploymentState::RollingBack => "Undoing the changes",
            DeploymentState::RolledBack => "Rolled back",
            DeploymentState::Removing => "Removing",
            DeploymentState::Done => "Done",
        }
    }

    pub fn is_finished(self) -> bool {
        DeploymentState::FINISHED.contains(&self)
    }

    /// Failed, or being (or done being) undone.
    pub fn went_wrong(self) -> bool {
        matches!(
            self,
            DeploymentState::Failed | DeploymentState::RollingBack | DeploymentState::RolledBack
        )
    }

    /// Being undone, or undone.
    pub fn undone(self) -> bool {
        matches!(
            self,
            DeploymentState::RollingBack | DeploymentState::RolledBack
        )
    }
}

impl fmt::Display for DeploymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a deployed app is doing on its device. Stored as its `as_str` word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Deployed; its health check has not passed yet.
    Starting,
    Running,
    /// Stopped by the user (or every container found stopped).
    Stopped,
    /// Some of its containers are not running.
    Failed,
    /// Its containers were removed outside Homelab.
    Missing,
}

impl RunState {
    const ALL: [RunState; 5] = [
        RunState::Starting,
        RunState::Running,
        RunState::Stopped,
        RunState::Failed,
        RunState::Missing,
    ];

    /// The stored word.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Stopped => "stopped",
            RunState::Failed => "failed",
            RunState::Missing => "missing",
        }
    }

    /// From the stored word.
    pub fn parse(s: &str) -> Option<RunState> {
        RunState::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_words_read_back() {
        for s in DeploymentState::ALL {
            assert_eq!(DeploymentState::parse(s.as_str()), Some(s));
        }
        for s in RunState::ALL {
            assert_eq!(RunState::parse(s.as_str()), Some(s));
        }
        assert_eq!(
            DeploymentState::parse("health_check"),
            Some(DeploymentState::HealthCheck)
        );
        assert_eq!(DeploymentState::parse("nonsense"), None);
        assert_eq!(RunState::parse("nonsense"), None);
    }
}
