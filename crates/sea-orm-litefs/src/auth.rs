//! Mutual challenge-response on a fresh TCP connection, before any RPC frame: each side proves it
//! knows the cluster secret with an HMAC over both sides' nonces. A peer that fails never reaches
//! the RPC service, so nothing it sends is executed.

use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAGIC: &[u8; 8] = b"LFSFWD02";
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

/// Why a handshake did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The other side does not know the secret (or is not one of ours at all).
    #[error("the peer does not share the cluster secret")]
    Rejected,
    /// The connection failed before the handshake could tell: nothing is known of the secret.
    #[error("the connection failed during the handshake: {0}")]
    Io(#[from] std::io::Error),
}

fn nonce() -> [u8; NONCE] {
    let mut n = [0u8; NONCE];
    rand::rng().fill_bytes(&mut n);
    n
}

/// The connecting side.
pub async fn client(stream: &mut TcpStream, secret: &[u8]) -> Result<(), HandshakeError> {
    let client_nonce = nonce();
    let mut hello = Vec::with_capacity(MAGIC.len() + NONCE);
    hello.extend_from_slice(MAGIC);
    hello.extend_from_slice(&client_nonce);
    stream.write_all(&hello).await?;
    let mut reply = [0u8; NONCE + MAC];
    stream.read_exact(&mut reply).await?;
    let (server_nonce, server_mac) = reply.split_at(NONCE);
    // Our proof goes out even when the server's failed, so that the server too learns that the
    // secrets differ (and says so in its log) instead of seeing a connection broken off.
    stream
        .write_all(&tag(secret, b"client", &client_nonce, server_nonce))
        .await?;
    if !verify(secret, b"server", &client_nonce, server_nonce, server_mac) {
        return Err(HandshakeError::Rejected);
    }
    let mut ok = [0u8; 1];
    match stream.read_exact(&mut ok).await {
        Ok(_) if ok[0] == 1 => Ok(()),
        Ok(_) => Err(HandshakeError::Rejected),
        // The server proved it knows the secret, then hung up on our proof: it rejected ours.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(HandshakeError::Rejected),
        Err(e) => Err(e.into()),
    }
}

/// The accepting side: `Ok` only for a peer that proved it knows the secret.
pub async fn server(stream: &mut TcpStream, secret: &[u8]) -> Result<(), HandshakeError> {
    let mut hello = [0u8; 8 + NONCE];
    stream.read_exact(&mut hello).await?;
    let (magic, client_nonce) = hello.split_at(8);
    if magic != MAGIC {
        return Err(HandshakeError::Rejected);
    }
    let server_nonce = nonce();
    let mut reply = Vec::with_capacity(NONCE + MAC);
    reply.extend_from_slice(&server_nonce);
    reply.extend_from_slice(&tag(secret, b"server", client_nonce, &server_nonce));
    stream.write_all(&reply).await?;
    let mut client_mac = [0u8; MAC];
    stream.read_exact(&mut client_mac).await?;
    if !verify(secret, b"client", client_nonce, &server_nonce, &client_mac) {
        return Err(HandshakeError::Rejected);
    }
    stream.write_all(&[1]).await?;
    Ok(())
}
