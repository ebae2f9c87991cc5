//! The PostgreSQL backend against real clusters (tests/it/support/pg.rs): the store
//! conformance suite, durability across a restart, migrations, sealed keys in dumps, and two
//! "datacenters" (a primary and a synchronous standby) with a Tessera node on each: read-local
//! licensing, revocation through the change feed, and failover with zero acknowledged keys
//! lost.

use super::support::pg::Cluster;
use super::support::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera::store::{KeyStore, PostgresConfig, PostgresStore, conformance};

fn pg_config(primary: &str, replica: Option<&str>) -> PostgresConfig {
    PostgresConfig {
        primary_url: primary.to_owned(),
        replica_url: replica.map(str::to_owned),
        migrate_on_start: true,
        acquire_timeout_ms: 500,
        connect_timeout_ms: 500,
        statement_timeout_ms: 2_000,
        write_timeout_ms: 2_000,
        // Loopback clusters without TLS.
        allow_plaintext: true,
        ..PostgresConfig::default()
    }
}

/// The base configuration on the PostgreSQL backend (`cache`: opened keys kept in memory;
/// 0 makes every licence read the store).
fn toml(
    dir: &std::path::Path,
    primary: &str,
    replica: Option<&str>,
    poll_ms: u64,
    cache: usize,
) -> String {
    let base = base_toml(dir).replace(
        "change_poll_interval_ms = 50\n",
        &format!(
            "change_poll_interval_ms = {poll_ms}\nbackend = \"postgres\"\nkey_cache_capacity = {cache}\n"
        ),
    );
    let replica = replica
        .map(|r| format!("replica_url = \"{r}\"\n"))
        .unwrap_or_default();
    format!(
        "{base}\n[storage.postgres]\nprimary_url = \"{primary}\"\n{replica}migrate_on_start = true\n\
         acquire_timeout_ms = 500\nconnect_timeout_ms = 500\nstatement_timeout_ms = 2000\n\
         write_timeout_ms = 2000\nallow_plaintext = true\n"
    )
}

async fn node(primary: &str, replica: Option<&str>, poll_ms: u64) -> Server {
    node_with_cache(primary, replica, poll_ms, 100_000).await
}

async fn node_with_cache(
    primary: &str,
    replica: Option<&str>,
    poll_ms: u64,
    cache: usize,
) -> Server {
    node_with(primary, replica, poll_ms, cache, "").await
}

/// A node with more `[storage.postgres]` settings (`extra`: TOML lines).
async fn node_with(
    primary: &str,
    replica: Option<&str>,
    poll_ms: u64,
    cache: usize,
    extra: &str,
) -> Server {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let text = toml(dir.path(), primary, replica, poll_ms, cache) + extra;
    Server::start_toml(dir, &text, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_durability_and_migrations() {
    let db = Cluster::primary(None);
    let cfg = pg_config(&db.url(), None);
    // `tessera migrate` applies the schema, then finds it up to date.
    let applied = tessera::store::postgres::migrate(&cfg).await.unwrap();
    assert_eq!(applied, vec![1, 2]);
    assert!(
        tessera::store::postgres::migrate(&cfg)
            .await
            .unwrap()
            .is_empty()
    );
    let store = PostgresStore::connect(&cfg).await.unwrap();
    conformance::run(&store).await;
    drop(store);

    // Durability: a fresh database, the fixture, a restart, a new connection.
    let db = Cluster::primary(None);
    let cfg = pg_config(&db.url(), None);
    let store = PostgresStore::connect(&cfg).await.unwrap();
    conformance::write_fixture(&store).await;
    drop(store);
    db.restart();
    let store = PostgresStore::connect(&cfg).await.unwrap();
    conformance::check_fixture(&store).await;

    // A schema behind the binary refuses to start without migrate_on_start.
    let empty = Cluster::primary(None);
    let err = PostgresStore::connect(&PostgresConfig {
        migrate_on_start: false,
        ..pg_config(&empty.url(), None)
    })
    .await
    .unwrap_err();
    assert!(err.contains("tessera migrate"), "{err}");

    // An upgrade from schema 1 applies what follows, keeping the data; and a schema newer
    // than the binary (a rolling upgrade's later migration) does not stop a node.
    let old = Cluster::primary(None);
    old.sql(&format!(
        "CREATE TABLE tessera_schema (version int PRIMARY KEY, applied_at timestamptz NOT NULL \
         DEFAULT now()); {} INSERT INTO tessera_schema (version) VALUES (1); \
         INSERT INTO tessera_changes (seq, tenant, kid, kind) VALUES (7, 't', '\\x00', 0);",
        tessera::store::postgres::MIGRATIONS[0].sql
    ))
    .await;
    let cfg = PostgresConfig {
        migrate_on_start: false,
        ..pg_config(&old.url(), None)
    };
    assert!(PostgresStore::connect(&cfg).await.is_err());
    assert_eq!(
        tessera::store::postgres::migrate(&cfg).await.unwrap(),
        vec![2]
    );
    let store = PostgresStore::connect(&cfg).await.unwrap();
    assert_eq!(store.change_cursor().await.unwrap(), 7);
    old.sql("INSERT INTO tessera_schema (version) VALUES (99)")
        .await;
    PostgresStore::connect(&cfg).await.unwrap();
    // ... unless that schema says it needs a newer binary.
    old.sql("UPDATE tessera_schema SET compatible_from = 99 WHERE version = 99")
        .await;
    let err = PostgresStore::connect(&cfg).await.unwrap_err();
    assert!(err.contains("needs a binary of schema version 99"), "{err}");
}

/// Racing creators of the same KIDs converge on one stored value per KID, and the change feed
/// numbers every creation once, in commit order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_converge_and_the_feed_is_gapless() {
    let db = Cluster::primary(None);
    let store = Arc::new(
        PostgresStore::connect(&pg_config(&db.url(), None))
            .await
            .unwrap(),
    );
    let mut tasks = Vec::new();
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    for w in 0..8u8 {
        let store = store.clone();
        let results = results.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20u8 {
                let rec = tessera::store::KeyRecord {
                    meta: tessera::keyring::KeyMeta {
                        kid: tessera::keyring::KeyId::from_bytes([i; 16]),
                        content_id: "race".into(),
                        track: None,
                        period: Some(u64::from(i)),
                        created_at: 1,
                        state: tessera::keyring::KeyState::Active,
                    },
                    sealed: vec![w; 40],
                };
                let out = store
                    .insert_keys("t", vec![rec], tessera::store::any_key())
                    .await
                    .unwrap();
                results
                    .lock()
                    .unwrap()
                    .push(out.into_iter().next().unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let results = std::mem::take(&mut *results.lock().unwrap());
    for i in 0..20u8 {
        let kid = tessera::keyring::KeyId::from_bytes([i; 16]);
        let mine: Vec<_> = results
            .iter()
            .filter(|r| r.record.meta.kid == kid)
            .collect();
        assert_eq!(mine.len(), 8);
        assert_eq!(
            mine.iter().filter(|r| r.created).count(),
            1,
            "one creator per KID"
        );
        assert!(
            mine.iter()
                .all(|r| r.record.sealed == mine[0].record.sealed),
            "every racer got the stored value"
        );
    }
    let feed = store.changes_since(0, 10_000).await.unwrap();
    assert_eq!(feed.len(), 20, "one creation per KID");
    assert!(feed.windows(2).all(|w| w[0].seq < w[1].seq));
    let listed = store.list_by_content("t", "race").await.unwrap();
    assert_eq!(listed.len(), 20);
}

/// Retention deletes old change rows, a prefix in `seq` order; a cursor below what it deleted
/// is told so (the app then drops its cached keys), and the keys themselves stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_the_feed_and_a_cursor_behind_it_is_told() {
    use tessera::keyring::{KeyId, KeyMeta, KeyState};
    use tessera::store::{Error, KeyRecord, any_key};
    let db = Cluster::primary(None);
    let rec = |i: u8| KeyRecord {
        meta: KeyMeta {
            kid: KeyId::from_bytes([i; 16]),
            content_id: "old".into(),
            track: None,
            period: Some(u64::from(i)),
            created_at: 1,
            state: KeyState::Active,
        },
        sealed: vec![i; 40],
    };
    // An hour's retention; sweeps every 250 ms (a quarter of the one-second staleness bound).
    let store = PostgresStore::connect(&PostgresConfig {
        change_retention_secs: 3_600,
        replica_max_staleness_secs: 1,
        ..pg_config(&db.url(), None)
    })
    .await
    .unwrap();
    // A poll after the sweep period: its sweep runs (after its read).
    let sweep = |cursor: u64| {
        let store = &store;
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            store.changes_since(cursor, 100).await
        }
    };
    store
        .insert_keys("t", vec![rec(1), rec(2)], any_key())
        .await
        .unwrap();
    store
        .revoke("t", KeyId::from_bytes([1; 16]), 5)
        .await
        .unwrap()
        .unwrap();
    let all = store.changes_since(0, 100).await.unwrap();
    assert_eq!(all.len(), 3);
    let last = all[2].seq;
    // Young rows stay.
    sweep(last).await.unwrap();
    assert_eq!(store.changes_since(0, 100).await.unwrap(), all);

    // Rows numbered two hours ago go, at the next sweep.
    db.sql("UPDATE tessera_changes SET numbered_at = now() - interval '2 hours'")
        .await;
    sweep(last).await.unwrap();
    assert_eq!(db.sql("SELECT count(*) FROM tessera_changes").await, ["0"]);
    match store.changes_since(0, 100).await {
        Err(Error::FeedReset { resume_at }) => assert_eq!(resume_at, last),
        other => panic!("expected a reset feed, got {other:?}"),
    }
    // From the watermark on, the feed goes on; a fresh node starts there, not at 0.
    assert!(store.changes_since(last, 100).await.unwrap().is_empty());
    assert_eq!(store.change_cursor().await.unwrap(), last);
    store
        .insert_keys("t", vec![rec(3)], any_key())
        .await
        .unwrap();
    let next = store.changes_since(last, 100).await.unwrap();
    assert_eq!(next.len(), 1);
    assert!(next[0].seq > last);
    // A cursor the primary has not reached (a failover to a standby that was behind this
    // node): the feed starts again from the primary's end.
    match store.changes_since(next[0].seq + 10, 100).await {
        Err(Error::FeedReset { resume_at }) => assert_eq!(resume_at, next[0].seq),
        other => panic!("expected a reset feed, got {other:?}"),
    }
    // Retention never touches the keys.
    let kids: Vec<_> = (1..=3).map(|i| KeyId::from_bytes([i; 16])).collect();
    let keys = store.get_keys("t", &kids).await.unwrap();
    assert!(keys.iter().all(Option::is_some));
    assert!(!keys[0].as_ref().unwrap().meta.is_active());

    // A node whose cursor is below the deleted rows drops its opened keys (they may have
    // been revoked in what it missed) and goes on from the watermark.
    let node = node(&db.url(), None, 100).await;
    node.create_keys("acme", "film", &["SD"]).await;
    assert!(!node.app().cache.is_empty(), "created keys are cached");
    // That poll ends at the watermark; the next one goes on from there.
    assert_eq!(node.app().poll_changes(0).await.unwrap(), last);
    assert!(node.app().cache.is_empty());
    assert!(node.app().poll_changes(last).await.unwrap() > last);
    let m = node.metrics().await;
    assert!(
        m.lines().any(|l| l == "tessera_change_feed_resets_total 1"),
        "{m}"
    );
}

/// A dump of the database holds sealed keys only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_reveals_no_key() {
    let db = Cluster::primary(None);
    let server = node(&db.url(), None, 50).await;
    let keys = server.create_keys("acme", "film", &["SD", "HD"]).await;
    let dump = db.dump();
    assert!(dump.contains("tessera_keys"));
    for track in ["SD", "HD"] {
        let key = key_of(&keys, track);
        let hex = tessera::encoding::hex_encode(&key);
        assert!(
            !dump.to_ascii_lowercase().contains(&hex),
            "{track} in clear"
        );
        assert!(!dump.contains(&tessera::encoding::b64_encode(&key)));
    }
}

async fn clearkey(server: &Server, token: &str, kid: &str) -> Resp {
    server.clearkey(token, json!({"kids": [b64kid(kid)]})).await
}

/// Two datacenters: node A on the primary, node B reading its local synchronous standby.
/// A key created through A is licensable at B at once (remote_apply: no fallback to the
/// primary needed); a revocation at A reaches B through the change feed within the poll
/// interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_local_licences_and_revocations_across_datacenters() {
    let a_db = Cluster::primary(Some("ANY 1 (dc_b)"));
    let b_db = Cluster::standby(&a_db, "dc_b");
    a_db.wait_for_sync("dc_b").await;
    let a = node(&a_db.url(), None, 100).await;
    let b = node(&a_db.url(), Some(&b_db.url()), 100).await;
    let keys = a.create_keys("acme", "film", &["SD"]).await;
    let sd = kid_of(&keys, "SD");
    let token = player_token("acme", json!({"kids": [sd]}));
    let r = clearkey(&b, &token, &sd).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let m = b.metrics().await;
    // The standby had the key when A's creation returned (remote_apply).
    assert!(
        m.contains("tessera_store_replica_fallbacks_total{reason=\"miss\"} 0"),
        "{m}"
    );
    assert!(m.contains(
        "tessera_store_operation_duration_seconds_count{backend=\"postgres\",op=\"get_keys\"}"
    ));

    // Replay prevention is shared: a two-use token spent once at A and once at B is spent.
    let twice = signer("acme")
        .sign(&claims(
            "acme",
            json!({"jti": "shared-use", "tessera": {"kids": [sd], "max_uses": 2}}),
        ))
        .unwrap();
    assert_eq!(clearkey(&a, &twice, &sd).await.status, 200);
    assert_eq!(clearkey(&b, &twice, &sd).await.status, 200);
    for node in [&a, &b] {
        let r = clearkey(node, &twice, &sd).await;
        assert_eq!((r.status, r.code().as_str()), (403, "token_replayed"));
    }

    let t = Instant::now();
    assert_eq!(a.revoke("acme", &sd).await.status, 200);
    loop {
        let r = clearkey(&b, &token, &sd).await;
        if r.status == 403 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "B still releases a key revoked at A"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let propagated = t.elapsed();
    assert!(propagated < Duration::from_millis(1_500), "{propagated:?}");
    println!("revocation visible at B after {propagated:?}");
    let m = b.metrics().await;
    assert!(
        m.contains("tessera_store_replica_fallbacks_total{reason=\"miss\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("tessera_store_replica_fallbacks_total{reason=\"error\"} 0"),
        "{m}"
    );

    // Without its synchronous standby the primary cannot make a key durable in a second
    // datacenter: creation is refused (503, within write_timeout_ms), never acknowledged.
    drop(b);
    b_db.kill();
    let t = Instant::now();
    let r = a
        .keyapi(
            "acme",
            "POST",
            "/v1/keys",
            &["keys:read", "keys:write"],
            json!({"content_id": "lonely", "tracks": ["SD"]}),
        )
        .await;
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.code(), "store_unavailable");
    assert!(
        t.elapsed() < Duration::from_millis(3_500),
        "{:?}",
        t.elapsed()
    );
}

/// A standby that stops replaying still answers, with revocations missing. The primary's
/// heartbeat, read from that replica, shows how far behind it is; past
/// `replica_max_staleness_secs` the node reads the change feed and keys from the primary, so
/// a revocation still arrives within the bound: for a key in its cache (through the feed)
/// and for one it reads every time (no cache).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_replica_is_detected_and_revocations_still_arrive() {
    let a_db = Cluster::primary(Some("ANY 1 (dc_b)"));
    let b_db = Cluster::standby(&a_db, "dc_b");
    // Asynchronous: not in the quorum, so pausing it does not hold writes up.
    let c_db = Cluster::standby(&a_db, "dc_c");
    a_db.wait_for_sync("dc_b").await;
    let a = node(&a_db.url(), None, 100).await;
    let stale_after = "replica_max_staleness_secs = 2\n";
    let c = node_with(&a_db.url(), Some(&c_db.url()), 100, 100_000, stale_after).await;
    let c0 = node_with(&a_db.url(), Some(&c_db.url()), 100, 0, stale_after).await;
    let keys = a.create_keys("acme", "film", &["SD", "HD"]).await;
    let (sd, hd) = (kid_of(&keys, "SD"), kid_of(&keys, "HD"));
    let token = player_token("acme", json!({"kids": [sd, hd]}));
    // Both keys reach dc_c, and C caches SD.
    let replayed = format!(
        "SELECT count(*) FROM tessera_keys WHERE revoked_at IS NULL AND kid IN \
         (decode(replace('{sd}', '-', ''), 'hex'), decode(replace('{hd}', '-', ''), 'hex'))"
    );
    let t = Instant::now();
    while c_db.sql(&replayed).await != ["2"] {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "dc_c never replayed the keys"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(clearkey(&c, &token, &sd).await.status, 200);
    assert_eq!(clearkey(&c0, &token, &hd).await.status, 200);
    let staleness = |m: &str| -> f64 {
        m.lines()
            .find_map(|l| l.strip_prefix("tessera_store_replica_staleness_seconds "))
            .unwrap_or_else(|| panic!("no staleness gauge: {m}"))
            .parse()
            .unwrap()
    };
    let stale_reads = |m: &str| -> u64 {
        m.lines()
            .find_map(|l| {
                l.strip_prefix("tessera_store_replica_fallbacks_total{reason=\"stale\"} ")
            })
            .unwrap_or_else(|| panic!("no stale fallbacks counter: {m}"))
            .parse()
            .unwrap()
    };
    // Healthy first: heartbeats every half second, well inside the bound (a measured age:
    // the gauge is 0 until the first poll).
    let t = Instant::now();
    while !(staleness(&c.metrics().await) > 0.0 && staleness(&c.metrics().await) < 1.0) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "dc_c never looked healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    c_db.sql("SELECT pg_wal_replay_pause()").await;
    let t = Instant::now();
    while c_db.sql("SELECT pg_get_wal_replay_pause_state()").await != ["paused"] {
        assert!(t.elapsed() < Duration::from_secs(10), "replay never paused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = Instant::now();
    assert_eq!(a.revoke("acme", &sd).await.status, 200);
    assert_eq!(a.revoke("acme", &hd).await.status, 200);
    for (node, kid) in [(&c, &sd), (&c0, &hd)] {
        while clearkey(node, &token, kid).await.status != 403 {
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "a node on the stalled replica still releases a key revoked at A"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let took = t.elapsed();
    println!("revocations at the stalled replica's nodes after {took:?} (bound: 2 s + a sweep)");
    // The bound is 2 s of staleness, half a second of heartbeat period and a poll; the rest
    // is slack for a loaded machine.
    assert!(took < Duration::from_secs(8), "{took:?}");
    // The replica itself still has both keys active: the answers came from the primary.
    assert_eq!(c_db.sql(&replayed).await, ["2"]);
    for node in [&c, &c0] {
        let m = node.metrics().await;
        assert!(staleness(&m) > 2.0, "{m}");
        assert!(stale_reads(&m) > 0, "{m}");
    }

    // Replay resumes, lagging 300 ms behind from now on (longer than a poll interval, well
    // inside the 2 s bound), while keys are created steadily at A. The replica catches up
    // and is trusted again: the target it had to reach stopped moving when the primary
    // stopped being read, so a replica a little behind the newest change is not stale.
    // (Chasing the primary's newest change instead would keep it stale as long as the
    // writes go on.) Key reads at C0 (every licence is one) then stay local.
    c_db.sql("ALTER SYSTEM SET recovery_min_apply_delay = '300ms'")
        .await;
    c_db.sql("SELECT pg_reload_conf()").await;
    let mut n = 0;
    let mut write = async || {
        a.create_keys("acme", &format!("steady-{n}"), &["SD"]).await;
        assert_eq!(clearkey(&c0, &token, &hd).await.status, 403);
        n += 1;
    };
    // The writes start while C still reads the primary, so its cursor is at the newest.
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(500) {
        write().await;
    }
    c_db.sql("SELECT pg_wal_replay_resume()").await;
    let t = Instant::now();
    while staleness(&c.metrics().await) > 2.0 {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "dc_c never caught up"
        );
        write().await;
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1_500) {
        write().await;
    }
    let stale_now = async || {
        [
            stale_reads(&c.metrics().await),
            stale_reads(&c0.metrics().await),
        ]
    };
    let before = stale_now().await;
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(2_000) {
        write().await;
    }
    let after = stale_now().await;
    assert_eq!(
        before, after,
        "steady creations kept a caught-up replica stale"
    );
    drop(b_db);
}

/// Failover under load: keys are created continuously through A while B serves licences;
/// the primary dies; creation fails fast (503) while there is no primary, B keeps serving;
/// the standby is promoted and creation resumes through the same URLs (every node listed,
/// `target_session_attrs=read-write`). Every key ever acknowledged is present, with its
/// value, afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_loses_no_acknowledged_key() {
    let a_db = Cluster::primary(Some("ANY 1 (dc_b)"));
    let b_db = Cluster::standby(&a_db, "dc_b");
    let both = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres dbname=postgres target_session_attrs=read-write",
        a_db.port, b_db.port
    );
    a_db.wait_for_sync("dc_b").await;
    let a = Arc::new(node(&both, None, 100).await);
    // B keeps no opened keys in memory: every licence it serves reads its standby.
    let b = Arc::new(node_with_cache(&both, Some(&b_db.url()), 100, 0).await);
    let known = a.create_keys("acme", "known", &["SD"]).await;
    let known_kid = kid_of(&known, "SD");
    let token = player_token("acme", json!({"content_ids": ["known"]}));
    assert_eq!(clearkey(&b, &token, &known_kid).await.status, 200);

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let start = Instant::now();
    // Writer: one new content id per request; record what was acknowledged and when writes
    // failed (and how long each failure took).
    let writer = {
        let (a, stop) = (a.clone(), stop.clone());
        tokio::spawn(async move {
            let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
            let mut failures: Vec<(Duration, Duration, u16)> = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let t = Instant::now();
                let r = a
                    .keyapi(
                        "acme",
                        "POST",
                        "/v1/keys",
                        &["keys:read", "keys:write"],
                        json!({"content_id": format!("live-{i}"), "tracks": ["SD"]}),
                    )
                    .await;
                if r.status == 201 {
                    for k in r.json()["keys"].as_array().unwrap() {
                        acked.push((
                            k["kid"].as_str().unwrap().to_owned(),
                            tessera::encoding::b64_decode(k["key"].as_str().unwrap()).unwrap(),
                        ));
                    }
                } else {
                    failures.push((start.elapsed(), t.elapsed(), r.status));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            (acked, failures)
        })
    };
    // Reader: licences for the known key at B, throughout.
    let reader = {
        let (b, stop, token, kid) = (b.clone(), stop.clone(), token.clone(), known_kid.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = clearkey(&b, &token, &kid).await;
                if r.status == 200 {
                    ok += 1;
                } else {
                    failed.push(r.status);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (ok, failed)
        })
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let killed_at = start.elapsed();
    a_db.kill();
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    // The operator (or Patroni / CloudNativePG) promotes the standby; with no standby left
    // it commits without waiting for one (the runbook's degraded mode).
    b_db.promote();
    b_db.sql("ALTER SYSTEM SET synchronous_standby_names = ''")
        .await;
    b_db.sql("SELECT pg_reload_conf()").await;
    let promoted_at = start.elapsed();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acked, failures) = writer.await.unwrap();
    let (reads_ok, read_failures) = reader.await.unwrap();

    assert!(
        read_failures.is_empty(),
        "B refused licences: {read_failures:?}"
    );
    assert!(reads_ok > 100, "{reads_ok}");
    assert!(
        !failures.is_empty(),
        "no write failed while there was no primary"
    );
    for (_, took, status) in &failures {
        assert_eq!(*status, 503);
        assert!(
            *took < Duration::from_millis(3_000),
            "a write hung for {took:?}"
        );
    }
    let first_fail = failures.first().unwrap().0;
    let last_fail = failures.last().unwrap().0;
    assert!(first_fail >= killed_at);
    assert!(
        acked.len() > 20,
        "too few writes acknowledged: {}",
        acked.len()
    );
    // Writes resumed after the promotion.
    assert!(last_fail < start.elapsed() - Duration::from_millis(500));
    println!(
        "failover: primary killed at {killed_at:?}, promoted at {promoted_at:?}; writes failed \
         from {first_fail:?} to {last_fail:?} ({} failures, slowest {:?}); {} keys acknowledged; \
         {reads_ok} licences at B, none refused",
        failures.len(),
        failures.iter().map(|f| f.1).max().unwrap(),
        acked.len()
    );

    // Every acknowledged key is on the new primary, with its value, once.
    let kids: Vec<String> = acked.iter().map(|(k, _)| k.clone()).collect();
    let mut seen = std::collections::HashSet::new();
    for (kid, key) in &acked {
        assert!(seen.insert(kid.clone()), "{kid} acknowledged twice");
        let r = b
            .keyapi(
                "acme",
                "GET",
                &format!("/v1/keys/{kid}"),
                &["keys:read"],
                Value::Null,
            )
            .await;
        assert_eq!(r.status, 200, "acknowledged key {kid} is missing");
        let stored =
            tessera::encoding::b64_decode(r.json()["keys"][0]["key"].as_str().unwrap()).unwrap();
        assert_eq!(&stored, key, "{kid} changed value");
    }
    // ...and licensable at B with their values: the first and the last 64 acknowledged (the
    // last ones were created through the promoted standby), in ClearKey licences.
    let all: Vec<&(String, Vec<u8>)> = acked.iter().collect();
    for chunk in all.chunks(16).take(4).chain(all.rchunks(16).take(4)) {
        let ids: Vec<&str> = chunk.iter().map(|(k, _)| k.as_str()).collect();
        let t = player_token("acme", json!({"kids": ids}));
        let r = b
            .clearkey(
                &t,
                json!({"kids": ids.iter().map(|k| b64kid(k)).collect::<Vec<_>>()}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let mut got: Vec<String> = r.json()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["k"].as_str().unwrap().to_owned())
            .collect();
        let mut want: Vec<String> = chunk
            .iter()
            .map(|(_, key)| tessera::encoding::b64url_encode(key))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
    let rows = b_db
        .sql("SELECT count(*) FROM tessera_keys WHERE content_id LIKE 'live-%'")
        .await;
    let stored: usize = rows[0].parse().unwrap();
    assert!(stored >= kids.len());
}

/// The per-datacenter examples in deploy/replication/ are valid configurations (with a tenant
/// added: they leave tenants to deploy/config.example.toml) and read their own datacenter.
#[test]
fn deploy_examples_are_valid() {
    let tenant = "\n[[tenants]]\nid = \"studio-a\"\nissuers = [\"https://idp\"]\naudiences = [\"tessera\"]\n\
                  [[tenants.keys]]\nkid = \"k\"\nalgorithms = [\"HS256\"]\nsecret = \"0123456789abcdef0123456789abcdef\"\n";
    for (dc, host) in [("a", "pg-a"), ("b", "pg-b"), ("c", "pg-c")] {
        let path = format!(
            "{}/deploy/replication/dc-{dc}.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap() + tenant;
        let cfg =
            tessera::config::Config::from_toml(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(cfg.storage.backend, "postgres");
        let pg = &cfg.storage.postgres;
        // The URLs parse as the backend will parse them (TLS verified, timeouts set).
        pg.check().unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(pg.primary_url.contains("target_session_attrs=read-write"));
        assert!(pg.replica_url.as_deref().unwrap().contains(host), "{path}");
    }
}
