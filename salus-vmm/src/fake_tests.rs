//! The whole VMM (setup, measurement, the threaded run loop) against the
//! scripted fake TSM.

use super::*;
use crate::args::{parse, Command, RunArgs};
use crate::launch::{exit_status, launch, Report};
use crate::protocol as proto;
use crate::setup::{hex, Blob, Inputs};
use crate::vm::End;

const DBCN: u64 = 0x4442_434E;
const SRST: u64 = 0x5352_5354;
const HSM: u64 = 0x0048_534D;
const COVG: u64 = cove_abi::EID_COVG;

fn args(s: &str) -> RunArgs {
    let v: Vec<String> = s.split_whitespace().map(String::from).collect();
    match parse(&v).unwrap() {
        Command::Run(r) => r,
        Command::Help => unreachable!(),
    }
}

fn image() -> Inputs {
    Inputs {
        image: Blob::from_bytes(&[0x13; 5000]),
        initrd: None,
        dtb: None,
        shim: None,
    }
}

fn go(fake: Fake, cmd: &str, has_v: bool) -> (Result<Report, String>, Capture, Arc<Mutex<World>>) {
    let cap = Capture::default();
    let world = Arc::clone(&fake.world);
    let r = launch(
        fake,
        &args(cmd),
        image(),
        has_v,
        Box::new(cap.clone()),
        None,
    );
    (r, cap, world)
}

/// The guest writes `text` into its console page, then console_write:
/// Salus serves it and the exit carries the bytes (a0 = how many).
fn console(text: &'static str) -> Step {
    step_with(move |w| {
        let p = w.page(proto::CONSOLE_GPA).expect("console page shared");
        p.write(0, text.as_bytes());
        let mut x = ecall(DBCN, 0, &[text.len() as u64]);
        x.console = text.as_bytes().to_vec();
        x
    })
}

/// Records the answer to the previous exit under `name`, then exits with `x`.
fn note(name: &'static str, x: Exit) -> Step {
    step_with(move |w| {
        let &(_, a0, a1) = w.answers.last().unwrap();
        w.flags.insert(name.into(), a0);
        w.flags.insert(format!("{name}.a1"), a1);
        x
    })
}

fn guestvm_script() -> (Vec<Step>, Vec<Step>) {
    let seed = 0x5eed_0001;
    let seed2 = 0x5eed_0002;
    let mmio_off = 0x108;
    let v0 = vec![
        step(ecall(COVG, 2, &[proto::CONSOLE_GPA, 0x1000])),
        step(fault(23, proto::CONSOLE_GPA)),
        console("TEST: guestvm:console\nPASS: guestvm:con"),
        console("sole\n"),
        // The exchange page: share, fault, fill, check.
        step(ecall(COVG, 2, &[proto::SHARED_GPA, 0x1000])),
        step(fault(23, proto::SHARED_GPA + 8)),
        step_with(move |w| {
            let p = w.page(proto::SHARED_GPA).unwrap();
            for i in 0..proto::HALF_WORDS {
                p.write_u64(8 * i as usize, proto::pattern(seed, i));
            }
            ecall(proto::EID_GVM, proto::FID_SHARED_CHECK, &[seed])
        }),
        step_with(move |w| {
            let p = w.page(proto::SHARED_GPA).unwrap();
            let ok = (0..proto::HALF_WORDS).all(|i| {
                p.read_u64(8 * (proto::HALF_WORDS + i) as usize) == proto::pattern(!seed, i)
            });
            w.flags.insert("host_pattern_ok".into(), ok as u64);
            let &(_, e, bad) = w.answers.last().unwrap();
            w.flags.insert("shared_check".into(), e | bad);
            ecall(COVG, 3, &[proto::SHARED_GPA, 0x1000])
        }),
        // Unshared: confidential (zero) again, the host's old page unseen.
        step(fault(21, proto::SHARED_GPA)),
        step(ecall(proto::EID_GVM, proto::FID_UNSHARED_CHECK, &[seed2])),
        note("unshared_check", ecall(COVG, 0, &[proto::MMIO_GPA, 0x1000])),
        step(mmio(true, 3, proto::MMIO_GPA, proto::mmio_store_value(0))),
        step(mmio(
            true,
            0,
            proto::MMIO_GPA + 0x18,
            proto::mmio_store_value(0x18) | 0x100,
        )),
        step(ecall(proto::EID_GVM, proto::FID_MMIO_STORES, &[])),
        note("mmio_stores", mmio(false, 2, proto::MMIO_GPA + mmio_off, 0)),
        note("lw", mmio(false, 6, proto::MMIO_GPA + mmio_off, 0)),
        note("lwu", mmio(false, 4, proto::MMIO_GPA + mmio_off, 0)),
        note("lbu", ecall(COVG, 1, &[proto::MMIO_GPA, 0x1000])),
        // Demand zero: 4 KiB, the same page again (a lost race), 2 MiB.
        step(fault(21, proto::ZERO_4K_GPA + 8)),
        step(fault(23, proto::ZERO_4K_GPA + 16)),
        step(fault(21, proto::ZERO_2M_GPA + 0x1234)),
        step(fault(23, proto::ZERO_2M_GPA + 0x10_0000)),
        // vCPU 1: the host runs it to its hart_stop before we resume.
        step(ecall(HSM, 0, &[1, proto::IMAGE_GPA + 0x40, 0x1234])),
        step_with(|w| {
            let stopped = w.flags.get("v1_stopped").copied().unwrap_or(0);
            w.flags.insert("v1_stopped_before_v0".into(), stopped);
            ecall(proto::EID_GVM, proto::FID_NOP, &[])
        }),
        console("guestvm: 7 passed, 0 failed"),
        step(ecall(SRST, 0, &[0, 0])),
    ];
    let v1 = vec![
        step_with(|w| {
            w.flags.insert("v1_ran".into(), 1);
            ecall(DBCN, 2, &[b'!' as u64])
        }),
        step(ecall(DBCN, 2, &[b'\n' as u64])),
        step_with(|w| {
            w.flags.insert("v1_stopped".into(), 1);
            ecall(HSM, 1, &[])
        }),
    ];
    (v0, v1)
}

#[test]
fn guestvm_run_end_to_end() {
    let (v0, v1) = guestvm_script();
    let (r, cap, world) = go(Fake::new(vec![v0, v1]), "run guestvm.bin", true);
    let r = r.unwrap();
    assert_eq!(r.end, End::Shutdown { kind: 0, reason: 0 });
    assert_eq!(exit_status(&r.end), 0);
    let w = world.lock().unwrap();
    let lines = cap.lines();
    // Register 1 as the TSM computes it: guestvm's region, 2 vCPUs.
    let mut config = measurement::Measurement::new(measurement::Backend::Portable);
    config.extend_config(
        [(crate::protocol::REGION_GPA, crate::protocol::REGION_LEN)].into_iter(),
        2,
        None,
    );
    assert_eq!(
        lines,
        vec![
            format!(
                "salus-vmm: initial measurement {}",
                hex(w.measurement.value())
            ),
            format!("salus-vmm: configuration register {}", hex(config.value())),
            "TEST: guestvm:console".into(),
            "PASS: guestvm:console".into(),
            "!".into(),
            "guestvm: 7 passed, 0 failed".into(),
        ]
    );
    let arg = proto::ARG_HAS_V | proto::ARG_HAS_VCPU1 | proto::ARG_HAS_2M;
    assert_eq!(w.finalized, Some((proto::IMAGE_GPA, arg)));
    let log: Vec<&str> = w.log.iter().map(String::as_str).collect();
    assert_eq!(
        log,
        vec![
            "CREATE_TVM",
            "ADD_REGION 0x80000000 0x800000",
            "ADD_MEASURED 0x80000000 2 4K",
            "ADD_MEASURED 0x80200000 512 2M",
            "CREATE_VCPU 0",
            "CREATE_VCPU 1",
            &format!("FINALIZE 0x80000000 {arg:#x}"),
            "ADD_SHARED 0x807e0000",
            "ADD_SHARED 0x807f0000",
            "REMOVE_SHARED 0x807f0000 0x1000",
            "ADD_ZERO 0x807f0000 0x1000 4K",
            "ADD_ZERO 0x80600000 0x1000 4K",
            "ADD_ZERO 0x80400000 0x200000 2M",
        ]
    );
    let f = |k: &str| w.flags.get(k).copied();
    assert_eq!(f("host_pattern_ok"), Some(1));
    assert_eq!(f("shared_check"), Some(0));
    assert_eq!(
        (f("unshared_check"), f("unshared_check.a1")),
        (Some(0), Some(0))
    );
    assert_eq!((f("mmio_stores"), f("mmio_stores.a1")), (Some(0), Some(2)));
    let raw = proto::mmio_load_value(0x108);
    assert_eq!(f("lw"), Some(proto::sign_extend(raw & 0xffff_ffff, 4)));
    assert_eq!(f("lwu"), Some(raw & 0xffff_ffff));
    assert_eq!(f("lbu"), Some(raw & 0xff));
    assert_eq!(f("v1_ran"), Some(1));
    assert_eq!(f("v1_stopped_before_v0"), Some(1));
    // DBCN console_write answered (0, len).
    assert!(w.answers.contains(&(0, 0, 39)));
    let s = r.stats;
    assert_eq!(s.zero_faults, 3);
    assert_eq!(s.zero_pages_2m, 1);
    assert_eq!(s.shared_faults, 2);
    assert_eq!(s.unshared_pages, 1);
    assert_eq!(s.mmio, 5);
    assert_eq!((s.lines, s.passed, s.failed), (4, 1, 0));
    assert_eq!(s.exits, 29);
}

#[test]
fn no_2m_pages_anywhere() {
    let v0 = vec![
        step(fault(21, proto::ZERO_2M_GPA + 0x1234)),
        step(fault(21, proto::ZERO_2M_GPA + 0x5000)),
        step(ecall(SRST, 0, &[0, 1])),
    ];
    let fake = Fake::new(vec![v0]);
    {
        let mut w = fake.world.lock().unwrap();
        w.fail_2m_measured = Some(errno::ENOMEM);
        w.fail_2m_zero = Some(errno::ENOMEM);
    }
    let (r, cap, world) = go(fake, "run guestvm.bin --vcpus 1", false);
    let r = r.unwrap();
    assert_eq!(r.end, End::Shutdown { kind: 0, reason: 1 });
    assert_eq!(exit_status(&r.end), 1);
    let w = world.lock().unwrap();
    // Nothing 2 MiB measured, no flags: the VMM's measurement is the fake's.
    assert_eq!(w.finalized, Some((proto::IMAGE_GPA, 0)));
    assert_eq!(
        cap.lines()[0],
        format!(
            "salus-vmm: initial measurement {}",
            hex(w.measurement.value())
        )
    );
    let zero: Vec<&String> = w.log.iter().filter(|l| l.starts_with("ADD_ZERO")).collect();
    assert_eq!(
        zero,
        [
            "ADD_ZERO 0x80401000 0x1000 4K",
            "ADD_ZERO 0x80405000 0x1000 4K"
        ]
    );
}

#[test]
fn a_2m_measured_add_failing_otherwise_is_fatal() {
    let fake = Fake::new(vec![vec![]]);
    fake.world.lock().unwrap().fail_2m_measured = Some(errno::EIO);
    let (r, _, _) = go(fake, "run guestvm.bin", false);
    let e = r.err().unwrap();
    assert!(e.contains("2 MiB pattern page") && e.contains("EIO"), "{e}");
    assert!(e.contains("SBI error -1000"), "{e}");
}

fn failed(r: Result<Report, String>) -> String {
    match r.unwrap().end {
        End::Failed(why) => why,
        e => panic!("ended with {e:?}"),
    }
}

#[test]
fn exits_it_cannot_serve() {
    let cases: Vec<(Exit, &str, &str)> = vec![
        (
            Exit {
                scause: 2,
                resumable: true,
                ..Default::default()
            },
            "run Image --vcpus 2",
            "cannot serve",
        ),
        (fault(21, 0x4000_0000), "run Image --vcpus 2", "outside"),
        (
            fault(20, proto::IMAGE_GPA),
            "run Image --vcpus 2",
            "measured page",
        ),
        (
            Exit {
                scause: 10,
                resumable: false,
                ..Default::default()
            },
            "run Image --vcpus 2",
            "not resumable",
        ),
        (ecall(HSM, 0, &[5]), "run Image --vcpus 2", "never created"),
    ];
    for (x, cmd, want) in cases {
        let (r, _, _) = go(Fake::new(vec![vec![step(x)]]), cmd, false);
        let why = failed(r);
        assert!(why.contains(want), "{why}");
    }
    // MMIO without a device model (a generic image), and with htinst 0.
    let v0 = vec![
        step(ecall(COVG, 0, &[0x1000_0000, 0x1000])),
        step(mmio(false, 3, 0x1000_0000, 0)),
    ];
    let why = failed(go(Fake::new(vec![v0]), "run Image", false).0);
    assert!(why.contains("no device"), "{why}");
    let v0 = vec![
        step(ecall(COVG, 0, &[proto::MMIO_GPA, 0x1000])),
        step(fault(21, proto::MMIO_GPA)),
    ];
    let why = failed(go(Fake::new(vec![v0]), "run guestvm.bin", false).0);
    assert!(why.contains("htinst is 0"), "{why}");
    // The script ran out: the run ioctl fails.
    let why = failed(go(Fake::new(vec![vec![]]), "run Image", false).0);
    assert!(why.contains("RUN_VCPU: EINVAL"), "{why}");
}

#[test]
fn watchdogs() {
    let mut v0 = vec![step(fault(21, proto::ZERO_4K_GPA))];
    for _ in 0..=crate::vm::NO_PROGRESS_LIMIT {
        v0.push(step(fault(21, proto::ZERO_4K_GPA)));
    }
    let why = failed(go(Fake::new(vec![v0]), "run guestvm.bin", false).0);
    assert!(why.contains("without progress"), "{why}");
    let v0 = (0..10)
        .map(|_| step(ecall(proto::EID_GVM, 0, &[])))
        .collect();
    let why = failed(go(Fake::new(vec![v0]), "run guestvm.bin --max-exits 5", false).0);
    assert!(why.contains("after 5 exits"), "{why}");
}

#[test]
fn generic_image_answers_and_eintr() {
    let v0 = vec![
        // Unknown SBI extension, the guestvm protocol (not for generic
        // images), a console_write exit without bytes, console_read (Salus
        // serves it: never an exit, the VMM refuses it).
        step(ecall(0x0123_4567, 3, &[])),
        note("unknown", ecall(proto::EID_GVM, 0, &[])),
        note("gvm", ecall(DBCN, 0, &[4, 0x8010_0000, 0])),
        note("write", ecall(DBCN, 1, &[4, 0x8010_0000, 0])),
        note("read", ecall(DBCN, 2, &[b'x' as u64])),
        step(ecall(SRST, 0, &[0, 0xf000_0000])),
    ];
    let fake = Fake::new(vec![v0]);
    fake.world.lock().unwrap().eintr = 2;
    let (r, cap, world) = go(fake, "run Image --vcpus 2 --mem 16M", false);
    let r = r.unwrap();
    assert_eq!(exit_status(&r.end), 63);
    let w = world.lock().unwrap();
    let f = |k: &str| w.flags.get(k).copied();
    assert_eq!(f("unknown"), Some(-2i64 as u64));
    assert_eq!(f("gvm"), Some(-2i64 as u64));
    assert_eq!((f("write"), f("write.a1")), (Some(0), Some(0)));
    assert_eq!(f("read"), Some(-2i64 as u64));
    // The partial console line is flushed at the end.
    assert_eq!(cap.lines().last().map(String::as_str), Some("x"));
    assert_eq!(w.finalized, Some((crate::setup::RAM_GPA, 0)));
    assert!(w
        .log
        .contains(&"ADD_REGION 0x80000000 0x1000000".to_string()));
    // Two EINTR runs, then the first real one: all with (0, 0).
    assert_eq!(&w.answers[..3], &[(0, 0, 0); 3]);
    // vCPU 1 was created but never started: never run.
    assert!(w.answers.iter().all(|a| a.0 == 0));
}
