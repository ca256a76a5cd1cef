use hw_policy::{henvcfg, host_henvcfg, EnvFeatures};

#[test]
fn cbo_inval_is_never_a_real_invalidate() {
    let all = EnvFeatures {
        sstc: true,
        svadu: true,
        svpbmt: true,
        zicbom: true,
        zicboz: true,
    };
    let v = host_henvcfg(all);
    assert_eq!(v & henvcfg::CBIE_MASK, henvcfg::CBIE_FLUSH);
    assert_ne!(v & henvcfg::CBIE_MASK, henvcfg::CBIE_INVAL);
    assert_eq!(
        v,
        henvcfg::STCE
            | henvcfg::ADUE
            | henvcfg::PBMTE
            | henvcfg::CBIE_FLUSH
            | henvcfg::CBCFE
            | henvcfg::CBZE
    );
}

#[test]
fn features_map_to_their_bits_only() {
    assert_eq!(host_henvcfg(EnvFeatures::default()), 0);
    let zicbom = host_henvcfg(EnvFeatures {
        zicbom: true,
        ..Default::default()
    });
    assert_eq!(zicbom, henvcfg::CBIE_FLUSH | henvcfg::CBCFE);
    let sstc = host_henvcfg(EnvFeatures {
        sstc: true,
        ..Default::default()
    });
    assert_eq!(sstc, henvcfg::STCE);
    // FIOM is never set: fences keep their architectural meaning.
    for bits in 0..32u32 {
        let f = EnvFeatures {
            sstc: bits & 1 != 0,
            svadu: bits & 2 != 0,
            svpbmt: bits & 4 != 0,
            zicbom: bits & 8 != 0,
            zicboz: bits & 16 != 0,
        };
        let v = host_henvcfg(f);
        assert_eq!(v & henvcfg::FIOM, 0);
        assert_ne!(v & henvcfg::CBIE_MASK, henvcfg::CBIE_INVAL);
    }
}
