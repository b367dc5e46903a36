//! A page driven in a real headless Chromium (Debian's `chromium`) by a playwright-core
//! script of `test_frontend/`: the script takes one JSON command per line on stdin and
//! answers each with one JSON line, which [`Driver::send`] returns.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Longest a command may take (the scripts wait up to 30 s themselves).
const WAIT: Duration = Duration::from_secs(60);

pub fn frontend_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_frontend")
}

/// A file the pages need from `static/node_modules`, checked.
pub fn require_static(relative: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("static/node_modules")
        .join(relative);
    assert!(
        path.is_file(),
        "{relative} is missing: run `npm ci` in static/ (make test does)"
    );
}

pub struct Driver {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Driver {
    /// Starts `node test_frontend/SCRIPT ARGS…`, once playwright-core and Chromium are
    /// there.
    pub fn start(script: &str, args: &[&OsStr]) -> Self {
        let dir = frontend_dir();
        assert!(
            dir.join("node_modules/playwright-core").is_dir(),
            "playwright-core is not installed: run `npm ci` in {} (make test does)",
            dir.display()
        );
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&chromium).is_file(),
            "Chromium is missing at {chromium}: install the Debian package chromium (make test does)"
        );
        let mut child = Command::new("node")
            .arg(dir.join(script))
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("starting node (is Node.js installed?)");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            _child: child,
            stdin,
            lines,
        }
    }

    /// Sends one command and returns the script's answer to it.
    pub async fn send(&mut self, command: &Value) -> Value {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
        let reply = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("the browser driver answered nothing for 60 s")
            .expect("reading the browser driver")
            .expect("the browser driver ended");
        serde_json::from_str(&reply).unwrap()
    }
}

/// Checks that the answer to a `screenshot` command names a saved picture.
pub fn check_screenshot(saved: &Value) {
    let path = PathBuf::from(saved["path"].as_str().unwrap());
    assert!(
        std::fs::metadata(&path).unwrap().len() > 1_000,
        "{}",
        path.display()
    );
}
