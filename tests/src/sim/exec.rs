//! `pods/exec` over WebSocket with the `v5.channel.k8s.io` and `v4.channel.k8s.io` subprotocols
//! (k8s.io/apimachinery/pkg/util/httpstream/wsstream, KEP-4006): each binary message starts
//! with its channel (0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize, 255 close in v5). The
//! command runs inside the pod's namespaces with the container's env.

use std::process::Stdio;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::errors::ApiError;
use super::http::{Body, Target, error_response, respond};
use super::pods::container_name;
use super::resources::builtin;
use super::{Shared, meta};

struct ExecRequest {
    command: Vec<String>,
    stdin: bool,
    tty: bool,
    ns_pid: u32,
    env: Vec<(String, String)>,
    workdir: String,
}

fn prepare(shared: &Shared, t: &Target, raw_query: &str) -> Result<ExecRequest, ApiError> {
    let pods = builtin("", "pods").expect("pods is built in");
    let name = t.name.clone().unwrap_or_default();
    let pod = shared.store.get(&pods, &t.namespace, &name)?;
    let container = container_name(&pod, t.query.get("container").map(String::as_str))?;
    let command: Vec<String> = raw_query
        .split('&')
        .filter_map(|p| p.strip_prefix("command="))
        .map(|c| {
            percent_encoding::percent_decode_str(&c.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let uid = meta::uid(&pod).to_string();
    let running = shared.kubelet.container_pid(&uid, &container).is_some();
    let (ns_pid, env) = shared
        .kubelet
        .exec_target(&uid, &container)
        .filter(|_| running)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to upgrade connection: container not found (\"{container}\")"
            ))
        })?;
    let workdir = pod["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == json!(container)))
        .and_then(|c| c["workingDir"].as_str())
        .unwrap_or("/")
        .to_string();
    let flag = |k: &str| t.query.get(k).is_some_and(|v| v == "true" || v == "1");
    Ok(ExecRequest {
        command,
        stdin: flag("stdin"),
        tty: flag("tty"),
        ns_pid,
        env,
        workdir,
    })
}

/// Upgrades an exec request to a WebSocket and runs the command.
pub async fn handle(shared: Arc<Shared>, t: Target, req: Request<Incoming>) -> Response<Body> {
    let raw_query = req.uri().query().unwrap_or_default().to_string();
    let exec = match prepare(&shared, &t, &raw_query) {
        Ok(e) => e,
        Err(e) => return error_response(&e),
    };
    let Some(key) = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()))
    else {
        return error_response(&ApiError::bad_request(
            "exec needs a WebSocket upgrade (SPDY is not supported)",
        ));
    };
    let offered = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
        .collect::<Vec<_>>();
    let protocol = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
        .into_iter()
        .find(|p| offered.iter().any(|o| o == p));
    let Some(protocol) = protocol else {
        return error_response(&ApiError::bad_request(format!(
            "unsupported exec subprotocols {offered:?}; this server speaks v5.channel.k8s.io and v4.channel.k8s.io"
        )));
    };
    let v5 = protocol.starts_with("v5");
    let cuts = shared.faults.exec_cuts();
    let meddling = shared.faults.meddling(&exec.command);
    tokio::spawn(async move {
        if let Ok(upgraded) = hyper::upgrade::on(req).await {
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            for before in meddling.before {
                let _ = tokio::task::spawn_blocking(before).await;
            }
            run(ws, exec, v5, cuts, meddling.flip_stdout).await;
        }
    });
    let mut r = respond(101, "application/octet-stream", bytes::Bytes::new());
    let h = r.headers_mut();
    h.remove("content-type");
    h.insert(
        "upgrade",
        hyper::header::HeaderValue::from_static("websocket"),
    );
    h.insert(
        "connection",
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    if let Ok(v) = key.parse() {
        h.insert("sec-websocket-accept", v);
    }
    h.insert(
        "sec-websocket-protocol",
        hyper::header::HeaderValue::from_static(protocol),
    );
    r
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// Sends what `r` gives on `channel`, with the byte at offset `flip` inverted if one is given.
async fn pump(
    mut r: impl tokio::io::AsyncRead + Unpin,
    channel: u8,
    tx: mpsc::Sender<Message>,
    flip: Option<u64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset = 0u64;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Some(at) = flip.filter(|at| (offset..offset + n as u64).contains(at)) {
                    buf[(at - offset) as usize] ^= 0xff;
                }
                offset += n as u64;
                if tx.send(frame(channel, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn run<S>(
    ws: WebSocketStream<S>,
    exec: ExecRequest,
    v5: bool,
    mut cuts: tokio::sync::watch::Receiver<u64>,
    flip_stdout: Option<u64>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let mut cmd = tokio::process::Command::new("nsenter");
    cmd.args([
        "-t",
        &exec.ns_pid.to_string(),
        "-m",
        "-n",
        "-p",
        "--",
        "sh",
        "-c",
        "cd \"$0\" 2>/dev/null; exec \"$@\"",
        &exec.workdir,
    ])
    .args(&exec.command)
    .env_clear()
    .envs(exec.env.iter().cloned())
    .stdin(if exec.stdin {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let status = json!({"metadata": {}, "status": "Failure", "message": format!("failed to start exec: {e}"), "reason": "InternalError"});
            let _ = sink.send(frame(3, status.to_string().as_bytes())).await;
            close(&mut sink).await;
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel::<Message>(16);
    let out = tokio::spawn(pump(
        child.stdout.take().expect("piped"),
        1,
        tx.clone(),
        flip_stdout,
    ));
    let err = tokio::spawn(pump(
        child.stderr.take().expect("piped"),
        if exec.tty { 1 } else { 2 },
        tx.clone(),
        None,
    ));
    drop(tx);
    let mut stdin = child.stdin.take();
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return None;
            }
        }
        Some(sink)
    });
    let code = {
        let reader = async {
            while let Some(Ok(msg)) = source.next().await {
                let data = match msg {
                    Message::Binary(b) => b.to_vec(),
                    Message::Text(t) => t.as_bytes().to_vec(),
                    Message::Close(_) => return false,
                    _ => continue,
                };
                match data.first() {
                    Some(0) => {
                        if let Some(s) = stdin.as_mut()
                            && s.write_all(&data[1..]).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                    Some(255) if v5 && data.get(1) == Some(&0) => stdin = None,
                    _ => {}
                }
            }
            false
        };
        tokio::pin!(reader);
        tokio::select! {
            status = child.wait() => status.ok().map(|s| s.code().unwrap_or(137)),
            _ = &mut reader => None,
            _ = cuts.changed() => None,
        }
    };
    let Some(code) = code else {
        // Cut (or the client went away): kill the command with its children and drop the
        // connection without a status or close frame.
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = child.start_kill();
        out.abort();
        err.abort();
        if let Ok(Some(sink)) = writer.await
            && let Ok(mut ws) = sink.reunite(source)
        {
            let _ = ws.get_mut().shutdown().await;
        }
        return;
    };
    let _ = out.await;
    let _ = err.await;
    let Ok(Some(mut sink)) = writer.await else {
        return;
    };
    let status = if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        json!({"metadata": {}, "status": "Failure",
               "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", exec.command.join(" ")),
               "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
    };
    let _ = sink.send(frame(3, status.to_string().as_bytes())).await;
    close(&mut sink).await;
    linger(source).await;
}

/// Reads what the client still sends until it closes its side (RFC 6455 §7.1.1: the server
/// waits for the client to close the TCP connection after the closing handshake). Dropping
/// the socket with unread input makes the kernel answer with a reset, which can discard the
/// status frame before the client has read it.
async fn linger<S>(mut source: futures::stream::SplitStream<WebSocketStream<S>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(Ok(_)) = source.next().await {}
    })
    .await;
}

/// Closes with 1000 (normal closure): clients treat a close without a code as an error.
async fn close<S: futures::Sink<Message> + Unpin>(sink: &mut S) {
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, frame::coding::CloseCode};
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    let _ = sink.close().await;
}
