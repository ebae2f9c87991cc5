//! Throwaway PostgreSQL clusters for the replication tests (no mocks): Debian's PostgreSQL
//! (installed by `tests/setup.sh`; when it is missing the tests fail naming that step),
//! clusters made with `initdb` under a temporary directory (as the `postgres` user when running
//! as root: initdb refuses root), listening on 127.0.0.1 on a free port, standbys made with
//! `pg_basebackup -R`. Each cluster is stopped (immediately) and deleted when dropped.

use super::RUN_SETUP;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The directory of `initdb`, `pg_ctl`, `pg_basebackup`, `pg_dump`.
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let find = || -> Option<PathBuf> {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|d| d.join("initdb").exists())
                .collect();
            dirs.sort();
            dirs.pop()
        };
        find().unwrap_or_else(|| {
            panic!(
                "Debian's PostgreSQL server is missing (no /usr/lib/postgresql/*/bin/initdb): \
                 {RUN_SETUP}"
            )
        })
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A PostgreSQL tool, run as `postgres` when we are root.
fn tool(name: &str) -> Command {
    let path = bin_dir().join(name);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut cmd: Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One running cluster.
pub struct Cluster {
    pub port: u16,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if is_root() {
        run({
            let mut c = Command::new("chown");
            c.args(["-R", "postgres"]).arg(dir.path());
            c
        });
    }
    dir
}

impl Cluster {
    /// A new primary. `sync` is its `synchronous_standby_names` (e.g. `ANY 1 (dc_b)`): a
    /// commit then waits until a named standby has applied it (`remote_apply`).
    pub fn primary(sync: Option<&str>) -> Self {
        let dir = private_dir();
        let data = dir.path().join("data");
        run({
            let mut c = tool("initdb");
            c.args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
                .arg(&data);
            c
        });
        let mut conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             wal_level = replica\nmax_wal_senders = 10\nhot_standby = on\n\
             synchronous_commit = remote_apply\nfsync = off\nfull_page_writes = off\n",
            dir.path().display()
        );
        if let Some(names) = sync {
            conf.push_str(&format!("synchronous_standby_names = '{names}'\n"));
        }
        append(&data.join("postgresql.conf"), &conf);
        append(
            &data.join("pg_hba.conf"),
            "\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n",
        );
        Self::start_on_a_free_port(data, dir)
    }

    /// Starts a new cluster on a free port. The port is free when picked, but a test running
    /// in parallel may bind it before the server does: then another port is tried.
    fn start_on_a_free_port(data: PathBuf, dir: tempfile::TempDir) -> Self {
        let log = data.join("server.log");
        for _ in 0..5 {
            let port = free_port();
            // The last `port` line of postgresql.conf wins.
            append(&data.join("postgresql.conf"), &format!("\nport = {port}\n"));
            let out = pg_ctl_start(&data).output().unwrap();
            if out.status.success() {
                return Self {
                    port,
                    data,
                    _dir: dir,
                };
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                text.contains("could not bind") || text.contains("already in use"),
                "pg_ctl start failed:\n{}\n{text}",
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = std::fs::remove_file(&log);
        }
        panic!("no free port for PostgreSQL in 5 attempts");
    }

    /// A streaming standby of `primary`, named `name` (its `application_name`).
    pub fn standby(primary: &Cluster, name: &str) -> Self {
        let dir = private_dir();
        let data = dir.path().join("data");
        run({
            let mut c = tool("pg_basebackup");
            c.args(["-h", "127.0.0.1", "-p", &primary.port.to_string()])
                .args(["-U", "postgres", "-X", "stream", "-R", "-D"])
                .arg(&data);
            c
        });
        append(
            &data.join("postgresql.conf"),
            &format!(
                "\nunix_socket_directories = '{}'\ncluster_name = '{name}'\n",
                dir.path().display()
            ),
        );
        append(
            &data.join("postgresql.auto.conf"),
            &format!(
                "\nprimary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name={name}'\n",
                primary.port
            ),
        );
        Self::start_on_a_free_port(data, dir)
    }

    /// Stops the cluster at once, as a crash would (no checkpoint, connections cut).
    pub fn kill(&self) {
        let _ = tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    /// Restarts after a clean stop. (`-l` as for `start`: without it the server would
    /// inherit our output pipes and `output()` would wait for it to exit.)
    pub fn restart(&self) {
        run({
            let mut c = tool("pg_ctl");
            c.arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.data.join("server.log"))
                .args(["-m", "fast", "-w", "-t", "60", "restart"]);
            c
        });
    }

    /// Promotes a standby to primary.
    pub fn promote(&self) {
        run({
            let mut c = tool("pg_ctl");
            c.arg("-D")
                .arg(&self.data)
                .args(["-w", "-t", "60", "promote"]);
            c
        });
    }

    /// `host=127.0.0.1 port=P user=postgres dbname=postgres`.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// Runs SQL (simple protocol) and returns the first column of every row as text.
    pub async fn sql(&self, sql: &str) -> Vec<String> {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        let mut out = Vec::new();
        for m in client.simple_query(sql).await.unwrap() {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                out.push(r.get(0).unwrap_or_default().to_owned());
            }
        }
        drop(client);
        let _ = task.await;
        out
    }

    /// Waits until the standby `name` streams as a synchronous (quorum) standby of this
    /// primary: a standby only counts once it has caught up.
    pub async fn wait_for_sync(&self, name: &str) {
        let want = format!("{name}:quorum");
        for _ in 0..200 {
            let got = self
                .sql("SELECT application_name || ':' || sync_state FROM pg_stat_replication")
                .await;
            if got.contains(&want) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{name} never became a synchronous standby");
    }

    /// `pg_dump` of the database, plain SQL.
    pub fn dump(&self) -> String {
        run({
            let mut c = tool("pg_dump");
            c.args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg("postgres");
            c
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill();
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn pg_ctl_start(data: &Path) -> Command {
    let mut c = tool("pg_ctl");
    c.arg("-D")
        .arg(data)
        .arg("-l")
        .arg(data.join("server.log"))
        .args(["-w", "-t", "60", "start"]);
    c
}
