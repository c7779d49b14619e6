//! `gcrec keys inspect` and `gcrec keys generate`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use gcrec_decrypt::keys::{KeyInfo, generate_pgp_pair, generate_rsa_pair, inspect_with};
use gcrec_pull::release::create_private_dir_all;

use crate::cli::{GlobalArgs, KeysCommand};
use crate::exit::{Outcome, UsageError};
use crate::passphrase;

fn describe(path: &Path, info: &KeyInfo) -> String {
    if let Some(cert) = &info.certificate {
        let mut lines = vec![
            format!("{}: X.509 certificate, {}", path.display(), cert.key),
            format!("  subject:     {}", cert.subject),
            format!("  issuer:      {}", cert.issuer),
            format!("  serial:      {}", cert.serial_hex),
        ];
        if let Some(ski) = &cert.ski_hex {
            lines.push(format!("  key ID:      {ski} (subject key identifier)"));
        }
        lines.push(format!(
            "  valid:       {} to {}",
            cert.not_before, cert.not_after
        ));
        lines.push(format!(
            "  public key:  {} (the fingerprint of its private key)",
            cert.spki_sha256
        ));
        return lines.join("\n");
    }
    let mut lines = vec![format!(
        "{}: {} key, {}",
        path.display(),
        info.kind,
        info.algorithm
    )];
    if !info.fingerprint.is_empty() {
        lines.push(format!("  fingerprint: {}", info.fingerprint));
    }
    if !info.key_ids.is_empty() {
        lines.push(format!("  key IDs:     {}", info.key_ids.join(", ")));
    }
    for uid in &info.user_ids {
        lines.push(format!("  user ID:     {uid}"));
    }
    lines.push(format!(
        "  protected:   {}",
        if info.protected {
            "yes (passphrase)"
        } else {
            "no"
        }
    ));
    lines.join("\n")
}

/// Writes a new file, `0600`, refusing to replace one.
fn write_new(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::Error::new(UsageError(format!(
                "{} exists; gcrec never overwrites keys",
                path.display()
            )))
        } else {
            anyhow::Error::new(e).context(format!("creating {}", path.display()))
        }
    })?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

pub fn run(global: &GlobalArgs, command: KeysCommand) -> Result<Outcome> {
    match command {
        KeysCommand::Inspect {
            files,
            json,
            passphrase_env,
            passphrase_file,
        } => {
            let given = passphrase::given(passphrase_env.as_deref(), passphrase_file.as_deref())?;
            for file in files {
                for info in inspect_with(&file, &given)? {
                    if json {
                        let mut v = serde_json::to_value(&info)?;
                        v["file"] = serde_json::json!(file.display().to_string());
                        println!("{v}");
                    } else {
                        println!("{}", describe(&file, &info));
                    }
                }
            }
            Ok(Outcome::Success)
        }
        KeysCommand::Generate {
            out,
            user_id,
            rsa_bits,
            passphrase_env,
            passphrase_file,
        } => {
            let given = passphrase::given(passphrase_env.as_deref(), passphrase_file.as_deref())?;
            let pw = given.first().map(|p| p.as_str());
            let names = [
                "gcrec-pgp.sec.asc",
                "gcrec-pgp.pub.asc",
                "gcrec-rsa.pem",
                "gcrec-rsa.pub.pem",
            ];
            for name in names {
                if out.join(name).exists() {
                    return Err(UsageError(format!(
                        "{} exists; gcrec never overwrites keys",
                        out.join(name).display()
                    ))
                    .into());
                }
            }
            create_private_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let pgp = generate_pgp_pair(&user_id, pw)?;
            let rsa = generate_rsa_pair(usize::from(rsa_bits), pw)?;
            write_new(&out.join(names[0]), pgp.secret.as_bytes())?;
            write_new(&out.join(names[1]), pgp.public.as_bytes())?;
            write_new(&out.join(names[2]), rsa.secret.as_bytes())?;
            write_new(&out.join(names[3]), rsa.public.as_bytes())?;
            if !global.quiet {
                println!("{}", describe(&out.join(names[0]), &pgp.info));
                println!("{}", describe(&out.join(names[2]), &rsa.info));
                eprintln!(
                    "wrote {} (secret keys: keep them safe; public keys: give them to whoever encrypts the export)",
                    names.map(|n| out.join(n).display().to_string()).join(", ")
                );
            }
            Ok(Outcome::Success)
        }
    }
}
