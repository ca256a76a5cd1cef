/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The SBI numbers salus-tsm uses (COVH, NACL, SUPD) and thin call
 * wrappers. Values from the CoVE spec and docs/cove-abi-choices.md; our
 * own names so nothing clashes with a kernel that grows its own.
 */
#ifndef _SALUS_TSM_SBI_H
#define _SALUS_TSM_SBI_H

#include <asm/sbi.h>

#define SALUS_EID_COVH	0x434F5648	/* "COVH" */
#define SALUS_EID_DBCN	0x4442434E	/* "DBCN": console exits carry bytes */
#define SALUS_EID_NACL	0x4E41434C	/* "NACL" */
#define SALUS_EID_SUPD	0x53555044	/* "SUPD" */

/* SUPD */
#define SUPD_GET_ACTIVE_DOMAINS	0

/* NACL */
#define NACL_SET_SHMEM		1
#define SALUS_NACL_SIZE		0x3000	/* 12 KiB, 4 KiB-aligned */
#define SALUS_NACL_GPR_OFF(x)	(8 * (x))	/* scratch.guest_gprs[x] */
#define SALUS_NACL_CONSOLE_OFF	0x100	/* DBCN bytes, after guest_gprs */
#define SALUS_CSR_HTVAL		0x643
#define SALUS_CSR_HTINST	0x64A

/* Byte offset of an HS/VS CSR's slot: index {csr[11:10], csr[7:0]}. */
static inline unsigned int salus_nacl_csr_off(unsigned int csr)
{
	return 0x1000 + 8 * (((csr >> 10) & 3) << 8 | (csr & 0xff));
}

/* COVH function ids (a6[15:0]; the SDID bits a6[31:26] stay 0). */
enum salus_covh_fid {
	COVH_GET_TSM_INFO = 0,
	COVH_CONVERT_PAGES = 1,
	COVH_RECLAIM_PAGES = 2,
	COVH_GLOBAL_FENCE = 3,
	COVH_LOCAL_FENCE = 4,
	COVH_CREATE_TVM = 5,
	COVH_FINALIZE_TVM = 6,
	COVH_DESTROY_TVM = 8,
	COVH_ADD_MEMORY_REGION = 9,
	COVH_ADD_PT_PAGES = 10,
	COVH_ADD_MEASURED_PAGES = 11,
	COVH_ADD_ZERO_PAGES = 12,
	COVH_ADD_SHARED_PAGES = 13,
	COVH_CREATE_VCPU = 14,
	COVH_RUN_VCPU = 15,
	COVH_TVM_FENCE = 16,
	COVH_TVM_INVALIDATE = 17,
	COVH_TVM_REMOVE = 19,
};

/* SBI errors: the standard ones plus Salus's CoVE codes. */
#define SALUS_ERR_FAILED		-1
#define SALUS_ERR_NOT_SUPPORTED		-2
#define SALUS_ERR_INVALID_PARAM		-3
#define SALUS_ERR_DENIED		-4
#define SALUS_ERR_INVALID_ADDRESS	-5
#define SALUS_ERR_ALREADY_AVAILABLE	-6
#define SALUS_ERR_ALREADY_STARTED	-7
#define SALUS_ERR_NO_SHMEM		-9
#define SALUS_ERR_INVALID_STATE		-10
#define SALUS_ERR_BAD_RANGE		-11
#define SALUS_ERR_DENIED_LOCKED		-14
#define SALUS_ERR_OUT_OF_PTPAGES	-1000
#define SALUS_ERR_AUTH			-1001
#define SALUS_ERR_OUT_OF_MEMORY		-1002
#define SALUS_ERR_BUSY			-1003

/* tsm_info as Salus writes it (48 bytes, little-endian = native). */
#define SALUS_TSM_INFO_LEN	48
#define SALUS_TSM_READY		2
struct salus_tsm_raw_info {
	u32 tsm_state;
	u32 tsm_impl_id;
	u32 tsm_version;
	u32 padding;
	u64 tsm_capabilities;
	u64 tvm_state_pages;
	u64 tvm_max_vcpus;
	u64 tvm_vcpu_state_pages;
};

/* tvm_create_params (16 bytes). */
struct salus_tvm_create_params {
	u64 tvm_page_directory_addr;
	u64 tvm_state_addr;
};

static inline struct sbiret covh_call(int fid, unsigned long a0,
				      unsigned long a1, unsigned long a2,
				      unsigned long a3, unsigned long a4,
				      unsigned long a5)
{
	return sbi_ecall(SALUS_EID_COVH, fid, a0, a1, a2, a3, a4, a5);
}

static inline struct sbiret nacl_set_shmem(unsigned long lo, unsigned long hi)
{
	return sbi_ecall(SALUS_EID_NACL, NACL_SET_SHMEM, lo, hi, 0, 0, 0, 0);
}

#endif /* _SALUS_TSM_SBI_H */
