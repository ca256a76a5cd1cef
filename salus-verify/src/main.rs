//! salus-verify: a relying party's check of Salus attestation evidence
//! (docs/attestation.md). It verifies every signature up the chain from
//! the trust anchor (the root public key Salus prints at boot), then the
//! policy: the challenge it expects, the reference values of the TVM's
//! initial registers (e.g. from salus-vmm's output), and the platform state
//! (a debug platform, such as Salus's stand-in root of trust, only with
//! `--allow-debug-platform`). Prints the claims and ACCEPT, or REJECT with
//! the reason (exit status 0 / 1; 2 for a usage error).
#![forbid(unsafe_code)]

mod policy;

use std::process::ExitCode;

use policy::{check, Policy};

const USAGE: &str = "\
usage: salus-verify EVIDENCE --anchor HEX --challenge HEX [--initial INDEX=HEX]... [--allow-debug-platform]
  EVIDENCE                 the evidence file (CBOR), or - for stdin
  --anchor HEX             the root public key (32 bytes) the chain starts from
  --challenge HEX          the nonce the TVM was asked to include
  --initial INDEX=HEX      the expected value of initial register INDEX (repeatable)
  --allow-debug-platform   accept a platform whose state is debug (a stand-in root of trust)";

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("{s:?}: an odd number of hex digits"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("{s:?}: not hex")))
        .collect()
}

fn parse(args: &[String]) -> Result<(String, Policy), String> {
    let mut file = None;
    let mut p = Policy::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().cloned().ok_or(format!("{what} needs a value"));
        match a.as_str() {
            "--anchor" => {
                let k = parse_hex(&value("--anchor")?)?;
                p.anchor = k.try_into().map_err(|_| "--anchor: 32 bytes".to_string())?;
            }
            "--challenge" => p.challenge = parse_hex(&value("--challenge")?)?,
            "--initial" => {
                let v = value("--initial")?;
                let (i, h) = v.split_once('=').ok_or("--initial INDEX=HEX")?;
                let i = i
                    .parse()
                    .map_err(|_| format!("--initial: bad index {i:?}"))?;
                p.initial.push((i, parse_hex(h)?));
            }
            "--allow-debug-platform" => p.allow_debug = true,
            o if o.starts_with("--") => return Err(format!("unknown option {o}")),
            _ if file.is_some() => return Err(format!("a second EVIDENCE {a:?}")),
            _ => file = Some(a.clone()),
        }
    }
    let file = file.ok_or("no EVIDENCE given")?;
    if p.anchor == [0; 32] {
        return Err("--anchor is required".into());
    }
    Ok((file, p))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (file, policy) = match parse(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("salus-verify: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let evidence = if file == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map(|_| b)
    } else {
        std::fs::read(&file)
    };
    let evidence = match evidence {
        Ok(b) => b,
        Err(e) => {
            eprintln!("salus-verify: {file}: {e}");
            return ExitCode::from(2);
        }
    };
    match check(&evidence, &policy) {
        Ok(claims) => {
            print!("{}", policy::describe(&claims));
            println!("ACCEPT");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("REJECT: {why}");
            ExitCode::from(1)
        }
    }
}
