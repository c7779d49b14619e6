//! Generated exports with their media encrypted the ways Genesys Cloud customers do:
//! OpenPGP to an RSA or a Curve25519 key (by GnuPG), S3 Encryption Client V2/V3 with an
//! RSA-OAEP-wrapped data key (written here) or a KMS-wrapped one (written by the official
//! `amazon-s3-encryption-client-python`, into a moto bucket), or left plain. Also the
//! deliberate damage the end-to-end tests expect to be caught.
//!
//! Needs GnuPG and the venv `scripts/test` builds; fails saying so when they are missing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::export::Export;
use crate::s3ec::{Version, Wrap};

/// How one media object is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encryption {
    /// OpenPGP (binary) to the example RSA-3072 key, name unchanged.
    PgpRsa,
    /// OpenPGP (armored) to the example Curve25519 key, saved as `NAME.asc`.
    PgpCv25519,
    /// S3EC V2, AES-GCM, data key wrapped with RSA-OAEP (example RSA key).
    S3ecV2Rsa,
    /// S3EC V3 (key-committing), data key wrapped with RSA-OAEP.
    S3ecV3Rsa,
    /// S3EC V2 with a KMS keyring (official client, moto KMS).
    S3ecV2Kms,
    /// S3EC V3 with a KMS keyring (official client, moto KMS).
    S3ecV3Kms,
    /// CMS AuthEnvelopedData (AES-256-GCM, DER, indefinite lengths: `openssl cms
    /// -encrypt -stream`) to the example recording certificate.
    CmsGcm,
    /// CMS EnvelopedData (AES-256-CBC, PEM, RSA-OAEP): unauthenticated.
    CmsCbc,
    /// An AWS Encryption SDK message (the official Python SDK; committing, signed,
    /// framed) to a raw AES master key (the example AES key).
    EsdkAes,
    /// Not encrypted.
    Plain,
}

impl Encryption {
    /// Every kind, in the order [`Encryption::nth`] cycles through.
    pub const ALL: [Encryption; 7] = [
        Encryption::PgpRsa,
        Encryption::PgpCv25519,
        Encryption::S3ecV2Rsa,
        Encryption::S3ecV3Rsa,
        Encryption::S3ecV2Kms,
        Encryption::S3ecV3Kms,
        Encryption::Plain,
    ];

    /// Every kind, CMS included (CMS CBC needs unauthenticated containers allowed).
    pub const EVERY: [Encryption; 10] = [
        Encryption::PgpRsa,
        Encryption::PgpCv25519,
        Encryption::S3ecV2Rsa,
        Encryption::S3ecV3Rsa,
        Encryption::S3ecV2Kms,
        Encryption::S3ecV3Kms,
        Encryption::CmsGcm,
        Encryption::CmsCbc,
        Encryption::EsdkAes,
        Encryption::Plain,
    ];

    /// The `i`-th kind of a round-robin over `kinds`.
    pub fn nth(kinds: &[Encryption], i: usize) -> Encryption {
        kinds[i % kinds.len()]
    }

    fn is_kms(self) -> bool {
        matches!(self, Encryption::S3ecV2Kms | Encryption::S3ecV3Kms)
    }
}

/// Deliberate damage to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// One bit flipped in the middle of the stored bytes.
    FlipMiddle,
    /// The last 16 bytes cut off.
    Truncate,
    /// Encrypted to an OpenPGP key nobody is given (only for OpenPGP objects).
    UnknownKey,
}

/// One media object as stored.
#[derive(Debug, Clone)]
pub struct StoredMedia {
    /// How it is encrypted.
    pub encryption: Encryption,
    /// The key it is stored under (`NAME.asc` for armored OpenPGP).
    pub stored_key: String,
    /// Damage done to it, if any.
    pub damage: Option<Damage>,
}

/// An export written to a directory, its media encrypted. KMS-encrypted objects are not
/// in the directory: [`EncryptedExport::upload`] puts them into the bucket with the
/// official client.
#[derive(Debug)]
pub struct EncryptedExport {
    /// The generated export (plaintext ground truth).
    pub export: Export,
    /// The directory holding it (bucket root layout, S3EC metadata in
    /// `*.gcrec-object.json` companions).
    pub dir: tempfile::TempDir,
    /// By the export's media key.
    pub media: BTreeMap<String, StoredMedia>,
    plain: tempfile::TempDir,
}

fn example_keys() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../keys-example"))
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (is it installed? scripts/test installs it)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.arg("--homedir")
        .arg(home)
        .args(["--batch", "--yes", "--quiet", "--trust-model", "always"]);
    c
}

impl EncryptedExport {
    /// Writes `export`, encrypting the `i`-th media object (in key order) as
    /// `plan(i)` and damaging it as `damage(i)`. `unknown_key_dir` holds an OpenPGP
    /// public key (`*.pub.asc`) for [`Damage::UnknownKey`].
    pub fn build(
        export: Export,
        plan: impl Fn(usize) -> Encryption,
        damage: impl Fn(usize) -> Option<Damage>,
        unknown_public_key: Option<&Path>,
    ) -> EncryptedExport {
        let plain = tempfile::tempdir().expect("tempdir");
        export.write_to_dir(plain.path()).expect("write export");
        let dir = tempfile::tempdir().expect("tempdir");
        export.write_to_dir(dir.path()).expect("write export");
        let keys: Vec<String> = {
            let mut k: Vec<String> = export
                .recordings
                .iter()
                .filter_map(|r| r.media_key.clone())
                .collect();
            k.sort();
            k
        };
        let home = tempfile::tempdir().expect("gnupg home");
        let keys_dir = example_keys();
        let mut import = gpg(home.path());
        import
            .arg("--import")
            .arg(keys_dir.join("pgp-rsa3072.pub.asc"))
            .arg(keys_dir.join("pgp-cv25519.pub.asc"));
        if let Some(k) = unknown_public_key {
            import.arg(k);
        }
        run(&mut import);
        let rsa = {
            use rsa::pkcs8::DecodePublicKey;
            let pem = std::fs::read_to_string(keys_dir.join("rsa3072.pub.pem")).expect("RSA key");
            rsa::RsaPublicKey::from_public_key_pem(&pem).expect("RSA public key")
        };
        let mut media = BTreeMap::new();
        let mut by_recipient: HashMap<(&str, bool), Vec<PathBuf>> = HashMap::new();
        let mut esdk: Vec<PathBuf> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let encryption = plan(i);
            let damage = damage(i);
            let path = dir.path().join(key);
            let mut stored_key = key.clone();
            match encryption {
                Encryption::PgpRsa | Encryption::PgpCv25519 => {
                    let armored = encryption == Encryption::PgpCv25519;
                    let recipient = match (damage, armored) {
                        (Some(Damage::UnknownKey), _) => "unknown@example.invalid",
                        (_, false) => "rsa@example.invalid",
                        (_, true) => "cv25519@example.invalid",
                    };
                    by_recipient
                        .entry((recipient, armored))
                        .or_default()
                        .push(path.clone());
                    if armored {
                        stored_key.push_str(".asc");
                    }
                }
                Encryption::S3ecV2Rsa | Encryption::S3ecV3Rsa => {
                    let version = if encryption == Encryption::S3ecV2Rsa {
                        Version::V2
                    } else {
                        Version::V3
                    };
                    let input = std::fs::File::open(&path).expect("plain media");
                    let tmp = path.with_extension("s3ec-tmp");
                    crate::s3ec::encrypt(input, &tmp, version, &Wrap::RsaOaep(rsa.clone()))
                        .expect("S3EC encrypt");
                    std::fs::rename(&tmp, &path).expect("rename");
                    let mut companion = tmp.into_os_string();
                    companion.push(gcrec_fetch::source::OBJECT_METADATA_SUFFIX);
                    let mut target = path.clone().into_os_string();
                    target.push(gcrec_fetch::source::OBJECT_METADATA_SUFFIX);
                    std::fs::rename(companion, target).expect("rename companion");
                }
                Encryption::S3ecV2Kms | Encryption::S3ecV3Kms => {
                    // Written by the official client at upload time.
                    std::fs::remove_file(&path).expect("remove");
                }
                Encryption::CmsGcm | Encryption::CmsCbc => {
                    let tmp = path.with_extension("cms-tmp");
                    let mut c = Command::new("openssl");
                    c.args(["cms", "-encrypt", "-binary", "-in"])
                        .arg(&path)
                        .arg("-out")
                        .arg(&tmp);
                    if encryption == Encryption::CmsGcm {
                        c.args(["-stream", "-outform", "DER", "-aes-256-gcm"])
                            .arg(keys_dir.join("rsa3072.cert.pem"));
                    } else {
                        c.args(["-outform", "PEM", "-aes-256-cbc", "-recip"])
                            .arg(keys_dir.join("rsa3072.cert.pem"))
                            .args(["-keyopt", "rsa_padding_mode:oaep"]);
                    }
                    run(&mut c);
                    std::fs::rename(&tmp, &path).expect("rename");
                }
                Encryption::EsdkAes => esdk.push(path.clone()),
                Encryption::Plain => {}
            }
            media.insert(
                key.clone(),
                StoredMedia {
                    encryption,
                    stored_key,
                    damage,
                },
            );
        }
        // One gpg run per recipient: --multifile writes FILE.gpg / FILE.asc beside each.
        for ((recipient, armored), files) in by_recipient {
            for chunk in files.chunks(500) {
                let mut c = gpg(home.path());
                if armored {
                    c.arg("--armor");
                }
                c.args(["-r", recipient, "--multifile", "--encrypt"])
                    .args(chunk);
                run(&mut c);
                for f in chunk {
                    let mut encrypted = f.clone().into_os_string();
                    encrypted.push(if armored { ".asc" } else { ".gpg" });
                    if armored {
                        std::fs::remove_file(f).expect("remove plain");
                    } else {
                        std::fs::rename(&encrypted, f).expect("rename");
                    }
                }
            }
        }
        // One Python run for every ESDK object: the SDK's start-up dominates otherwise.
        for chunk in esdk.chunks(500) {
            run(Command::new(crate::servers::venv_bin("python"))
                .arg(example_keys().join("../tests/interop/esdk_encrypt.py"))
                .arg("--aes-key")
                .arg(keys_dir.join("aes256.key"))
                .arg("--in-place")
                .args(chunk));
        }
        let built = EncryptedExport {
            export,
            dir,
            media,
            plain,
        };
        for m in built.media.values() {
            if m.encryption.is_kms() {
                continue;
            }
            if let Some(d) = m.damage {
                built.damage_file(&built.dir.path().join(&m.stored_key), d);
            }
        }
        built
    }

    fn damage_file(&self, path: &Path, damage: Damage) {
        let mut bytes = std::fs::read(path).expect("read stored object");
        match damage {
            Damage::FlipMiddle => {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x10;
            }
            Damage::Truncate => bytes.truncate(bytes.len().saturating_sub(16)),
            Damage::UnknownKey => return,
        }
        std::fs::write(path, bytes).expect("write damaged object");
    }

    /// The plaintext of a media key (the generator's bytes).
    pub fn plaintext_path(&self, media_key: &str) -> PathBuf {
        self.plain.path().join(media_key)
    }

    /// Uploads everything into `bucket` on a moto server (created if missing): files with
    /// their saved S3 metadata as user metadata, and the KMS-encrypted media through the
    /// official S3 Encryption Client. Damage to KMS objects is not supported.
    pub async fn upload(&self, moto: &crate::servers::Moto, bucket: &str) {
        let client = moto.s3_client();
        let _ = client.create_bucket().bucket(bucket).send().await;
        let mut objects = Vec::new();
        collect_files(self.dir.path(), self.dir.path(), &mut objects);
        let items = objects.into_iter().map(|(key, path)| {
            let body = std::fs::read(&path).expect("read object");
            let mut companion = path.into_os_string();
            companion.push(gcrec_fetch::source::OBJECT_METADATA_SUFFIX);
            let metadata: HashMap<String, String> = std::fs::read(&companion)
                .ok()
                .and_then(|b| {
                    serde_json::from_slice::<gcrec_fetch::source::SavedObjectMetadata>(&b).ok()
                })
                .map(|s| s.user_metadata.into_iter().collect())
                .unwrap_or_default();
            (key, body, metadata)
        });
        crate::servers::upload_with(&client, bucket, &crate::servers::Sse::None, items).await;
        for (suite, kind) in [("v2", Encryption::S3ecV2Kms), ("v3", Encryption::S3ecV3Kms)] {
            let files: Vec<PathBuf> = self
                .media
                .iter()
                .filter(|(_, m)| m.encryption == kind)
                .map(|(k, _)| self.plaintext_path(k))
                .collect();
            if files.is_empty() {
                continue;
            }
            let script = PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/interop/s3ec_official.py"
            ));
            for chunk in files.chunks(400) {
                run(Command::new(crate::servers::venv_bin("python"))
                    .arg(&script)
                    .args([
                        "--endpoint",
                        &moto.endpoint,
                        "--suite",
                        suite,
                        "--bucket",
                        bucket,
                    ])
                    .arg("--root")
                    .arg(self.plain.path())
                    .args(chunk));
            }
        }
    }
}

/// Files under `dir` as (key, path), leaving out saved-metadata companions.
fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            collect_files(root, &path, out);
        } else if !path
            .to_string_lossy()
            .ends_with(gcrec_fetch::source::OBJECT_METADATA_SUFFIX)
        {
            let key = path
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((key, path));
        }
    }
}
