//! Mutual challenge-response on a fresh TCP connection, before any RPC frame: each side proves it
//! knows the cluster secret with an HMAC over both sides' nonces. A peer that fails never reaches
//! the RPC service, so nothing it sends is executed.

use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAGIC: &[u8; 8] = b"BLOGRPC1";
const NONCE: usize = 32;
const MAC: usize = 32;
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

fn tag(secret: &[u8], who: &[u8], client_nonce: &[u8], server_nonce: &[u8]) -> [u8; MAC] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(who);
    mac.update(client_nonce);
    mac.update(server_nonce);
    mac.finalize().into_bytes().into()
}

fn verify(
    secret: &[u8],
    who: &[u8],
    client_nonce: &[u8],
    server_nonce: &[u8],
    given: &[u8],
) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(who);
    mac.update(client_nonce);
    mac.update(server_nonce);
    mac.verify_slice(given).is_ok()
}

fn nonce() -> [u8; NONCE] {
    let mut n = [0u8; NONCE];
    rand::rng().fill_bytes(&mut n);
    n
}

/// The connecting side. `Ok(false)` means the server does not share our secret.
pub async fn client(stream: &mut TcpStream, secret: &[u8]) -> std::io::Result<bool> {
    let client_nonce = nonce();
    let mut hello = Vec::with_capacity(MAGIC.len() + NONCE);
    hello.extend_from_slice(MAGIC);
    hello.extend_from_slice(&client_nonce);
    stream.write_all(&hello).await?;
    let mut reply = [0u8; NONCE + MAC];
    if stream.read_exact(&mut reply).await.is_err() {
        return Ok(false);
    }
    let (server_nonce, server_mac) = reply.split_at(NONCE);
    if !verify(secret, b"server", &client_nonce, server_nonce, server_mac) {
        return Ok(false);
    }
    stream
        .write_all(&tag(secret, b"client", &client_nonce, server_nonce))
        .await?;
    let mut ok = [0u8; 1];
    Ok(stream.read_exact(&mut ok).await.is_ok() && ok[0] == 1)
}

/// The accepting side. `Ok(false)` means the peer is not one of ours; drop the connection.
pub async fn server(stream: &mut TcpStream, secret: &[u8]) -> std::io::Result<bool> {
    let mut hello = [0u8; 8 + NONCE];
    stream.read_exact(&mut hello).await?;
    let (magic, client_nonce) = hello.split_at(8);
    if magic != MAGIC {
        return Ok(false);
    }
    let server_nonce = nonce();
    let mut reply = Vec::with_capacity(NONCE + MAC);
    reply.extend_from_slice(&server_nonce);
    reply.extend_from_slice(&tag(secret, b"server", client_nonce, &server_nonce));
    stream.write_all(&reply).await?;
    let mut client_mac = [0u8; MAC];
    stream.read_exact(&mut client_mac).await?;
    if !verify(secret, b"client", client_nonce, &server_nonce, &client_mac) {
        return Ok(false);
    }
    stream.write_all(&[1]).await?;
    Ok(true)
}
