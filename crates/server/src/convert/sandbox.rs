//! One tool as a sandboxed child process. It gets its own process group (LibreOffice starts
//! helpers of its own), which is killed whole at the deadline, when the tool exits (so no
//! helper outlives it) and when the conversion is dropped. Resource limits are set by
//! `prlimit` before it executes the tool: the workspace forbids `unsafe`, and a `pre_exec`
//! hook calling `setrlimit` is `unsafe`. The environment is empty except `PATH`, `HOME` (the
//! work directory, where LibreOffice would otherwise write its settings), `LANG` and `TMPDIR`
//! (inside the work directory, so temporary files of a killed tool go with it).
//!
//! `RLIMIT_NPROC` is not set: it counts every process of the server's user, not the tool's,
//! so any value would either not bound the tool or refuse it when the server's user has many
//! processes.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use super::{find_program, search_path, ConvertError, ConvertLimits, Tool};

/// How much of each output stream is kept: enough for pdfinfo's report and an error's tail.
const KEEP: usize = 16 * 1024;
/// How many of the last lines go into an error message.
const TAIL_LINES: usize = 8;
/// How long the output is read after the tool ended and its group was killed; a process that
/// left the group could hold the pipes open forever.
const DRAIN: Duration = Duration::from_secs(2);

/// What a tool wrote, up to [`KEEP`] bytes of each stream (the end).
#[derive(Debug, Default)]
pub(crate) struct Output {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

impl Output {
    /// The last lines of stderr, then of stdout, on one line.
    pub(crate) fn last_lines(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        for stream in [&self.stderr, &self.stdout] {
            let text = String::from_utf8_lossy(stream);
            let mut l: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let skip = l.len().saturating_sub(TAIL_LINES);
            lines.extend(l.drain(skip..).map(str::to_owned));
        }
        if lines.is_empty() {
            "no output".into()
        } else {
            lines.join(" | ")
        }
    }
}

/// Runs `tool` with `args` in `work_dir` until it exits or `deadline` passes.
pub(crate) async fn run(
    tool: Tool,
    args: &[OsString],
    work_dir: &Path,
    deadline: Instant,
    limits: &ConvertLimits,
) -> Result<Output, ConvertError> {
    run_program(
        tool,
        OsStr::new(tool.program()),
        args,
        work_dir,
        deadline,
        limits,
    )
    .await
}

/// [`run`] of any program, reported as `tool` (tests run `sh`).
pub(crate) async fn run_program(
    tool: Tool,
    program: &OsStr,
    args: &[OsString],
    work_dir: &Path,
    deadline: Instant,
    limits: &ConvertLimits,
) -> Result<Output, ConvertError> {
    let path = search_path();
    let program = program.to_str().and_then(|p| find_program(p, &path));
    let Some(program) = program else {
        return Err(ConvertError::ToolMissing { tool });
    };
    let Some(prlimit) = find_program(Tool::Prlimit.program(), &path) else {
        return Err(ConvertError::ToolMissing {
            tool: Tool::Prlimit,
        });
    };

    let mut cmd = tokio::process::Command::new(prlimit);
    cmd.arg(format!("--as={}", limits.address_space_bytes))
        .arg(format!("--cpu={}", limits.cpu_secs))
        .arg(format!("--fsize={}", limits.file_size_bytes))
        // A crashing tool writes no core file into the work directory.
        .arg("--core=0")
        .arg("--")
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", &path)
        .env("HOME", work_dir)
        .env("LANG", "C.UTF-8")
        .env("TMPDIR", work_dir.join("tmp"))
        .current_dir(work_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| ConvertError::Io {
        what: format!("starting {tool}"),
        source: e,
    })?;
    // The child leads its group: the group's id is its pid. The guard kills the group however
    // this function ends, the future being dropped included.
    let group = Group(child.id().and_then(|id| i32::try_from(id).ok()));
    let stdout = child.stdout.take().map(|s| tokio::spawn(keep_tail(s)));
    let stderr = child.stderr.take().map(|s| tokio::spawn(keep_tail(s)));

    let waited = tokio::time::timeout_at(deadline, child.wait()).await;
    group.kill();
    let status = match waited {
        Ok(status) => status.map_err(|e| ConvertError::Io {
            what: format!("waiting for {tool}"),
            source: e,
        })?,
        Err(_) => {
            // Reap it: the group was killed, so this returns at once.
            let _ = child.wait().await;
            return Err(ConvertError::Timeout {
                tool,
                limit: limits.timeout,
            });
        }
    };
    let output = Output {
        stdout: drain(stdout).await,
        stderr: drain(stderr).await,
    };
    if status.success() {
        Ok(output)
    } else {
        Err(ConvertError::ToolFailed {
            tool,
            status: describe(status),
            output: output.last_lines(),
        })
    }
}

/// A process group to kill with SIGKILL, at the latest when dropped.
struct Group(Option<i32>);

impl Group {
    fn kill(&self) {
        if let Some(pid) = self.0.and_then(rustix::process::Pid::from_raw) {
            // ESRCH when every member has already exited: nothing to do. After the leader has
            // been reaped its id stays the group's while any member lives, so this cannot
            // reach an unrelated process group (Linux does not reuse a pid still in use as a
            // group id).
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn keep_tail(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n @ 1..) = r.read(&mut buf).await {
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * KEEP {
            kept.drain(..kept.len() - KEEP);
        }
    }
    if kept.len() > KEEP {
        kept.drain(..kept.len() - KEEP);
    }
    kept
}

async fn drain(task: Option<tokio::task::JoinHandle<Vec<u8>>>) -> Vec<u8> {
    let Some(mut task) = task else {
        return Vec::new();
    };
    match tokio::time::timeout(DRAIN, &mut task).await {
        Ok(Ok(bytes)) => bytes,
        _ => {
            task.abort();
            Vec::new()
        }
    }
}

/// The exit code, or the signal and what it means under the limits set.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(9)) => "killed by SIGKILL".into(),
        (None, Some(24)) => "killed by SIGXCPU: CPU time limit reached".into(),
        (None, Some(25)) => "killed by SIGXFSZ: file size limit reached".into(),
        (None, Some(11)) => "killed by SIGSEGV (out of address space?)".into(),
        (None, Some(6)) => "killed by SIGABRT (out of address space?)".into(),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => "ended without exit status".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<OsString> {
        vec!["-c".into(), script.into()]
    }

    /// Live processes (not zombies) in process group `pgid`.
    fn alive_in_group(pgid: u32) -> Vec<u32> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str()) {
                found.push(pid);
            }
        }
        found
    }

    async fn run_sh_in(
        dir: &Path,
        script: &str,
        limits: &ConvertLimits,
    ) -> Result<Output, ConvertError> {
        std::fs::create_dir_all(dir.join("tmp")).expect("tmp");
        let deadline = Instant::now() + limits.timeout;
        run_program(
            Tool::Soffice,
            OsStr::new("sh"),
            &sh(script),
            dir,
            deadline,
            limits,
        )
        .await
    }

    async fn run_sh(script: &str, limits: &ConvertLimits) -> Result<Output, ConvertError> {
        let dir = tempfile::tempdir().expect("temp dir");
        run_sh_in(dir.path(), script, limits).await
    }

    #[tokio::test]
    async fn the_environment_is_empty_but_for_four_variables() {
        let out = run_sh("env | sort; pwd", &ConvertLimits::default())
            .await
            .expect("sh runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .filter(|k| *k != "PWD" && *k != "SHLVL" && *k != "_")
            .collect();
        assert_eq!(names, ["HOME", "LANG", "PATH", "TMPDIR"], "{text}");
    }

    #[tokio::test]
    async fn limits_are_set_in_the_child() {
        let limits = ConvertLimits {
            address_space_bytes: 1 << 30,
            cpu_secs: 7,
            file_size_bytes: 1 << 20,
            ..ConvertLimits::default()
        };
        // dash reports -v in KiB, -f in 512-byte blocks.
        let out = run_sh("ulimit -v; ulimit -t; ulimit -f; ulimit -c", &limits)
            .await
            .expect("sh runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(got, ["1048576", "7", "2048", "0"], "{text}");
    }

    #[tokio::test]
    async fn writing_past_the_file_size_limit_is_refused() {
        let limits = ConvertLimits {
            file_size_bytes: 64 * 1024,
            ..ConvertLimits::default()
        };
        let e = run_sh("exec head -c 1000000 /dev/zero > big", &limits)
            .await
            .expect_err("too big");
        assert!(
            matches!(&e, ConvertError::ToolFailed { status, .. } if status.contains("SIGXFSZ")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_failure_names_its_status_and_last_lines() {
        let e = run_sh(
            "echo first; echo 'it broke' >&2; exit 3",
            &ConvertLimits::default(),
        )
        .await
        .expect_err("exit 3");
        assert_eq!(
            e.to_string(),
            "soffice failed (exit status 3): it broke | first"
        );
    }

    #[tokio::test]
    async fn at_the_deadline_the_whole_group_is_killed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let limits = ConvertLimits {
            timeout: Duration::from_millis(500),
            ..ConvertLimits::default()
        };
        // The shell leads the group (prlimit executed it); a helper runs in the background
        // and one in the foreground, both in its group.
        let script = "echo $$ > pgid; sleep 30 & sleep 30; wait";
        let started = std::time::Instant::now();
        let e = run_sh_in(dir.path(), script, &limits)
            .await
            .expect_err("timeout");
        assert!(matches!(e, ConvertError::Timeout { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let pgid: u32 = std::fs::read_to_string(dir.path().join("pgid"))
            .expect("pgid written")
            .trim()
            .parse()
            .expect("a pid");
        // Killed processes are reaped by whoever inherited them; give that a moment.
        let mut left = alive_in_group(pgid);
        for _ in 0..100 {
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            left = alive_in_group(pgid);
        }
        assert!(left.is_empty(), "left behind in group {pgid}: {left:?}");
    }

    #[tokio::test]
    async fn a_missing_program_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let e = run_program(
            Tool::Pdftoppm,
            OsStr::new("no-such-program-here"),
            &[],
            dir.path(),
            Instant::now() + Duration::from_secs(5),
            &ConvertLimits::default(),
        )
        .await
        .expect_err("missing");
        assert!(
            matches!(
                e,
                ConvertError::ToolMissing {
                    tool: Tool::Pdftoppm
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn only_the_last_lines_are_kept() {
        let out = Output {
            stdout: (1..=20)
                .map(|i| format!("line {i}\n"))
                .collect::<String>()
                .into(),
            stderr: Vec::new(),
        };
        assert_eq!(
            out.last_lines(),
            "line 13 | line 14 | line 15 | line 16 | line 17 | line 18 | line 19 | line 20"
        );
        assert_eq!(Output::default().last_lines(), "no output");
    }
}
