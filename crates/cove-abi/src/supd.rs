//! Supervisor domains enumeration extension (EID "SUPD").

crate::fid_enum! {
    /// SUPD function ids.
    SupdFunction {
        /// `get_active_domains()` -> bit mask of active SDIDs (bit 0 always set).
        GetActiveDomains = 0,
    }
}

/// Active-domain mask when only the hosting domain (SDID 0) exists.
pub const HOST_DOMAIN_ONLY: u64 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fid() {
        assert_eq!(
            SupdFunction::from_fid(0),
            Some(SupdFunction::GetActiveDomains)
        );
        assert_eq!(SupdFunction::from_fid(1), None);
    }
}
