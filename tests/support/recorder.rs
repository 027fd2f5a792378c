//! A TCP relay that records every byte clients send through it, so a test
//! sees the requests another process made (request lines, headers,
//! bodies) where the server receives them, whatever that process reports
//! about itself. It runs on a thread and runtime of its own, so a test may
//! block on the process it watches.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running relay.
pub struct Recorder {
    /// `127.0.0.1:PORT`, where clients connect.
    pub addr: String,
    /// What each connection sent, one buffer per connection.
    sent: Arc<Mutex<Vec<Connection>>>,
}

type Connection = Arc<Mutex<Vec<u8>>>;

impl Recorder {
    /// Relays connections to `to` (`host:port`) until the process exits.
    pub fn start(to: &str) -> Recorder {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the recorder");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address").to_string();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (to, record) = (to.to_string(), sent.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the recorder's runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("listener");
                while let Ok((client, _)) = listener.accept().await {
                    let connection = Connection::default();
                    lock(&record).push(connection.clone());
                    tokio::spawn(relay(client, to.clone(), connection));
                }
            });
        });
        Recorder { addr, sent }
    }

    /// How many times `needle` occurs in what clients sent.
    pub fn count(&self, needle: &str) -> usize {
        let needle = needle.as_bytes();
        lock(&self.sent)
            .iter()
            .map(|c| {
                let sent = lock(c);
                sent.windows(needle.len()).filter(|w| *w == needle).count()
            })
            .sum()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn relay(client: TcpStream, to: String, record: Connection) {
    let Ok(server) = TcpStream::connect(&to).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = client_read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            lock(&record).extend_from_slice(&buf[..n]);
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}
