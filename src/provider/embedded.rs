//! The embedded provider: takes [`ProvisionOptions`]; gives [`Provisioned`]
//! wrapping [`crate::provision::Embedded`] (private servers from the local
//! binaries, stopped when the guard drops). Also answers whether the
//! binaries are here, for `auto` and `gonogo doctor`.

use crate::provision::postgres::ROLE;
use crate::provision::{BinarySearch, Embedded, EmbeddedOptions, MissingBinary};

use super::{
    PostgresEndpoint, ProviderGuard, ProviderKind, ProvisionOptions, Provisioned, RedisEndpoint,
};

/// The binaries the embedded provider runs.
pub const BINARIES: [&str; 3] = ["initdb", "postgres", "redis-server"];

/// The binaries that are missing here (empty: embedded can run).
pub fn missing() -> Vec<MissingBinary> {
    let search = BinarySearch::from_env();
    BINARIES
        .iter()
        .filter_map(|binary| search.find(binary).err())
        .collect()
}

/// What to install for `missing`, e.g. `apt-get install postgresql redis-server`.
pub fn install_hint(missing: &[MissingBinary]) -> String {
    let mut packages: Vec<&str> = missing.iter().map(|m| m.package).collect();
    packages.dedup();
    format!("apt-get install {}", packages.join(" "))
}

/// Start private Postgres and Redis servers.
pub async fn start(options: &ProvisionOptions) -> anyhow::Result<Provisioned> {
    let embedded = Embedded::start(&EmbeddedOptions {
        keep: options.keep,
        ..EmbeddedOptions::default()
    })
    .await?;
    let pg = embedded.postgres();
    let redis = embedded.redis();
    let postgres = PostgresEndpoint {
        host: "127.0.0.1".into(),
        port: pg.port(),
        user: ROLE.into(),
        password: pg.password().clone(),
        password_in_url: pg.password().clone(),
        database: pg.database().into(),
        query: None,
        version: pg.version().into(),
        ready: pg.timings().total,
        provisioned_from: Some(pg.timings().source.to_string()),
    };
    let redis = RedisEndpoint {
        scheme: "redis".into(),
        host: "127.0.0.1".into(),
        port: redis.port(),
        user: None,
        password: redis.password().clone(),
        password_in_url: redis.password().clone(),
        db: "0".into(),
        version: redis.version().into(),
        ready: redis.timings().total,
    };
    Ok(Provisioned {
        kind: ProviderKind::Embedded,
        postgres,
        redis,
        guard: ProviderGuard::Embedded(Box::new(embedded)),
    })
}
