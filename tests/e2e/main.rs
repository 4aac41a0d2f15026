//! End-to-end tests of the `vm-federation` daemon: real `node run` processes on 127.0.0.1
//! driven through the CLI, a real DNS server in-process, SIGKILL and SIGTERM.

mod amend;
mod cli_json;
mod daemon;
mod dns;
mod federation;
mod honest;
mod https;
mod monitoring;
mod operator_status;
mod ops;
mod readme;
mod readme_http;
mod readme_p2p;
mod restart;
mod service;
mod storage;
mod streaming;
mod support;
mod witness;
