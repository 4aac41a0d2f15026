//! An in-process node for the benchmarks (real sockets, its own data directory).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::Method;
use serde_json::Value;
use vaultmesh_federation::clock::{Clock, SystemClock};
use vaultmesh_federation::data_dir::DataDir;
use vaultmesh_federation::node;
use vaultmesh_federation::node::client::call_async;
use vm_receipts::MeshId;

pub struct Running {
    pub root: PathBuf,
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts mesh `name` (key seed `seed`) with `extra` appended to its config.toml.
pub async fn start(dir: &Path, name: &str, seed: u8, extra: &str) -> Running {
    let root = dir.join(name);
    DataDir::init(
        &root,
        MeshId::from_name(name).unwrap(),
        [seed; 32],
        SystemClock.now(),
    )
    .unwrap();
    let mut config = std::fs::read_to_string(root.join("config.toml")).unwrap();
    config.push_str(
        "\n[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n[anchor]\ninterval_secs = 86400\n",
    );
    config.push_str(extra);
    std::fs::write(root.join("config.toml"), config).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn({
        let root = root.clone();
        async move {
            node::run(&root, async {
                let _ = stopped.await;
            })
            .await
        }
    });
    for _ in 0..400 {
        if root.join("control.sock").exists() {
            return Running { root, stop, task };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{name} did not start");
}

/// One control-socket request.
pub async fn ctl(n: &Running, method: Method, path: &str, body: Option<Value>) -> Value {
    call_async(&n.root, method, path, body).await.unwrap()
}
