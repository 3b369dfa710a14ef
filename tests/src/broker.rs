//! A Mosquitto of our own, configured as `deploy/mosquitto/wuye.conf` ships it (the dynamic-
//! security plugin, no anonymous access, persistence), plus a TLS listener with a CA made for
//! the test. Only the paths and ports are rewritten: the directives are the shipped ones.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// The server's broker account (the dynamic-security administrator).
pub const SERVER_USER: &str = "wuye-api";

pub struct ShippedBroker {
    pub port: u16,
    pub tls_port: u16,
    pub server_password: String,
    pub ca_file: PathBuf,
    pub dir: PathBuf,
    child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn dynsec_plugin() -> &'static str {
    [
        "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
        "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("Mosquitto's dynamic-security plugin (Debian package mosquitto)")
}

impl ShippedBroker {
    pub async fn start() -> ShippedBroker {
        let dir = std::env::temp_dir().join(format!("wuye-broker-{}", Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let (port, tls_port) = (free_port(), free_port());
        let server_password = format!("pw-{}", Uuid::new_v4().simple());
        let dynsec = dir.join("dynamic-security.json");
        run(Command::new("mosquitto_ctrl").args(["dynsec", "init"]).arg(&dynsec).args([SERVER_USER, &server_password]));
        // a CA and a certificate for 127.0.0.1 / localhost
        let ca_key = dir.join("ca.key");
        let ca_file = dir.join("ca.crt");
        let (key, csr, crt, ext) =
            (dir.join("server.key"), dir.join("server.csr"), dir.join("server.crt"), dir.join("san.ext"));
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=wuye test CA"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_file));
        run(Command::new("openssl")
            .args(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        std::fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca_file)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-out")
            .arg(&crt)
            .arg("-extfile")
            .arg(&ext));

        let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/mosquitto/wuye.conf"))
            .expect("deploy/mosquitto/wuye.conf");
        let data = format!("{}/", dir.display());
        let mut seen = std::collections::HashSet::new();
        let mut conf = String::new();
        for line in shipped.lines() {
            let key = line.split_whitespace().next().unwrap_or("");
            let replaced = match key {
                "listener" => format!("listener {port} 127.0.0.1"),
                "plugin" => format!("plugin {}", dynsec_plugin()),
                "plugin_opt_config_file" => format!("plugin_opt_config_file {}", dynsec.display()),
                "persistence_location" => format!("persistence_location {data}"),
                _ => line.to_owned(),
            };
            seen.insert(key.to_owned());
            conf.push_str(&replaced);
            conf.push('\n');
        }
        for k in ["listener", "plugin", "plugin_opt_config_file", "allow_anonymous", "max_packet_size"] {
            assert!(seen.contains(k), "the shipped configuration sets {k}");
        }
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        conf.push_str(&format!(
            "listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nuser {}\n",
            ca_file.display(),
            crt.display(),
            key.display(),
            user.trim()
        ));
        let path = dir.join("mosquitto.conf");
        std::fs::write(&path, conf).unwrap();
        let bin = ["/usr/sbin/mosquitto", "mosquitto"]
            .into_iter()
            .find(|b| std::path::Path::new(b).exists())
            .unwrap_or("mosquitto");
        let log = std::fs::File::create(dir.join("mosquitto.log")).unwrap();
        let child =
            Command::new(bin).arg("-c").arg(&path).stdout(Stdio::null()).stderr(log).spawn().expect("mosquitto");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err()
            || tokio::net::TcpStream::connect(("127.0.0.1", tls_port)).await.is_err()
        {
            assert!(Instant::now() < deadline, "mosquitto did not start: {}", dir.join("mosquitto.log").display());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ShippedBroker { port, tls_port, server_password, ca_file, dir, child }
    }

    /// The server's URL on the plain listener.
    pub fn server_url(&self) -> String {
        format!("mqtt://{SERVER_USER}:{}@127.0.0.1:{}", self.server_password, self.port)
    }

    /// The server's URL on the TLS listener.
    pub fn server_tls_url(&self) -> String {
        format!("mqtts://{SERVER_USER}:{}@localhost:{}", self.server_password, self.tls_port)
    }

    /// What a device connects to (its account set separately).
    pub fn device_url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for ShippedBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
