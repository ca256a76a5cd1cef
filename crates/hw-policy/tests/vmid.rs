use hw_policy::{vmid_bits, vmid_for, vmids_shared};

const MAX: usize = 64;

#[test]
fn probe_readback_gives_the_implemented_bits() {
    assert_eq!(vmid_bits(0), 0);
    assert_eq!(vmid_bits(0x3fff << 44), 14);
    assert_eq!(vmid_bits(0x7f << 44), 7);
    assert_eq!(vmid_bits((0x3f << 44) | (8 << 60) | 0x1234), 6);
    // Bits outside the field (mode, reserved 59:58) do not count.
    assert_eq!(vmid_bits(u64::MAX), 14);
}

#[test]
fn enough_bits_give_every_slot_its_own_vmid() {
    for bits in [7, 8, 14, 20] {
        let mut seen = std::collections::BTreeSet::new();
        seen.insert(0u16); // the host
        for slot in 0..MAX {
            let (v, fence) = vmid_for(slot, bits, MAX);
            assert!(!fence);
            assert!((v as u64) < (1 << bits.min(14)));
            assert!(seen.insert(v), "vmid {v} reused (bits {bits})");
        }
        assert!(!vmids_shared(bits, MAX));
    }
}

#[test]
fn too_few_bits_share_vmid_0_and_fence() {
    // 6 bits: 64 values, but 64 TVMs + the host need 65.
    for bits in 0..=6 {
        for slot in 0..MAX {
            assert_eq!(
                vmid_for(slot, bits, MAX),
                (0, true),
                "bits {bits} slot {slot}"
            );
        }
        assert!(vmids_shared(bits, MAX));
    }
    // A slot out of range never gets a VMID of its own.
    assert_eq!(vmid_for(MAX, 14, MAX), (0, true));
    // Fewer TVMs fit in fewer bits.
    assert_eq!(vmid_for(2, 2, 3), (3, false));
    assert_eq!(vmid_for(0, 2, 4), (0, true));
}
