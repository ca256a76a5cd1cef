/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note OR Apache-2.0 */
/*
 * /dev/salus-tsm: the ioctl interface of salus-tsm.ko, the Linux host's
 * driver for Salus's CoVE host API (COVH). Shared by the driver and the
 * userspace VMM (salus-vmm mirrors it in salus-vmm/src/abi.rs; a test there
 * checks sizes and ioctl numbers against this file).
 *
 * Model
 * - open() gives a file with no TVM. SALUS_TSM_CREATE_TVM makes that file
 *   own exactly one TVM. Closing the last reference destroys the TVM and
 *   reclaims every page it was given; pages Salus refuses to give back are
 *   leaked (never freed) and counted in salus_tsm_info.leaked_pages.
 * - Confidential memory is allocated by the driver, converted with the
 *   fence protocol on all online CPUs, and never mapped into any user
 *   address space. User memory is used only as (a) the copy source of
 *   measured pages, (b) shared pages (pinned while the TVM maps them).
 * - Every address and length is in bytes. GPAs and lengths must be
 *   multiples of the page size of the call (4 KiB unless page_type says
 *   2 MiB). One call handles at most SALUS_TSM_MAX_CALL_BYTES
 *   (ADD_REGION, which allocates nothing, excepted).
 * - Page-table pages are the driver's business: it donates some at
 *   CREATE_TVM and more whenever Salus answers OUT_OF_PTPAGES, at most
 *   SALUS_TSM_MAX_PT_PAGES per TVM.
 * - Errors: -1 with errno. EINVAL bad argument (alignment, size,
 *   wrap-around, reserved field non-zero, page type, vCPU id), ENOTTY
 *   unknown ioctl, EEXIST/ENOENT a TVM already exists/does not exist yet,
 *   EBUSY the vCPU runs on another thread, E2BIG more than
 *   SALUS_TSM_MAX_CALL_BYTES, ENOMEM/ENOSPC out of memory/out of TSM
 *   slots, EFAULT bad user pointer, EINTR a signal (restart the call),
 *   EPERM/EACCES what Salus answered DENIED, EIO any other Salus error,
 *   e.g. overlaps, GPAs outside a region, calls out of order
 *   (salus_tsm_error holds the SBI error code of the last failed COVH
 *   call on this file: SALUS_TSM_LAST_ERROR).
 */
#ifndef _UAPI_SALUS_TSM_H
#define _UAPI_SALUS_TSM_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define SALUS_TSM_DEVICE "/dev/salus-tsm"
#define SALUS_TSM_ABI_VERSION 1

/* Largest range (bytes) one ioctl handles; larger calls fail with E2BIG. */
#define SALUS_TSM_MAX_CALL_BYTES (64ULL << 20)

/* Page-table pages the driver donates to one TVM, at most. */
#define SALUS_TSM_MAX_PT_PAGES 4096

/* Page types, as COVH numbers them. */
#define SALUS_TSM_PAGE_4K 0
#define SALUS_TSM_PAGE_2M 1

/* SALUS_TSM_GET_INFO: works on any open file (no TVM needed). */
struct salus_tsm_info {
	__u32 abi_version;		/* SALUS_TSM_ABI_VERSION */
	__u32 tsm_state;		/* COVH tsm_info, as get_tsm_info wrote it */
	__u32 tsm_impl_id;
	__u32 tsm_version;
	__u64 tsm_capabilities;
	__u64 tvm_state_pages;
	__u64 tvm_max_vcpus;
	__u64 tvm_vcpu_state_pages;
	/* Driver-wide counters (all files): */
	__u64 converted_pages;	/* 4 KiB pages now converted (held by TVMs) */
	__u64 shared_pages;	/* user pages now pinned as TVM shared pages */
	__u64 leaked_pages;	/* pages Salus did not give back (never freed) */
	__u64 live_tvms;	/* TVMs that exist now */
};

/* SALUS_TSM_CREATE_TVM: no argument struct beyond the reserved word. */
struct salus_tsm_create {
	__u64 tvm_id;		/* out: the TSM's tvm_guest_id */
	__u64 reserved;		/* must be 0 */
};

/* SALUS_TSM_ADD_REGION: declare [gpa, gpa+len) as confidential memory. */
struct salus_tsm_region {
	__u64 gpa;
	__u64 len;
};

/*
 * SALUS_TSM_ADD_MEASURED: copy len bytes from uaddr (user memory, readable)
 * into fresh confidential pages mapped at gpa, extending the TVM's initial
 * measurement. len a multiple of the page size of page_type. Only before
 * SALUS_TSM_FINALIZE.
 */
struct salus_tsm_measured {
	__u64 gpa;
	__u64 uaddr;
	__u64 len;
	__u32 page_type;
	__u32 reserved;		/* must be 0 */
};

/*
 * SALUS_TSM_ADD_ZERO: back [gpa, gpa+len) with fresh zeroed confidential
 * pages of page_type (demand-zero faults). Salus takes zero pages only
 * after SALUS_TSM_FINALIZE (before: EIO).
 */
struct salus_tsm_zero {
	__u64 gpa;
	__u64 len;
	__u32 page_type;
	__u32 reserved;		/* must be 0 */
};

/*
 * SALUS_TSM_ADD_SHARED: map the user pages [uaddr, uaddr+len) (writable,
 * 4 KiB-aligned; pinned until removed or the TVM dies) at gpa, inside a
 * range the TVM declared shareable.
 * SALUS_TSM_REMOVE_SHARED: the TVM unshared [gpa, gpa+len): invalidate,
 * fence and remove the shared pages there, and unpin them (pages Salus
 * already took back on the TVM's unshare are just unpinned).
 */
struct salus_tsm_shared {
	__u64 gpa;
	__u64 uaddr;		/* ignored by REMOVE_SHARED */
	__u64 len;
};

/*
 * Bytes a TVM printed with DBCN console_write (Salus serves the call and
 * copies them out of the TVM; the host never reads TVM memory for them).
 */
#define SALUS_TSM_CONSOLE_MAX 1024

/* SALUS_TSM_CREATE_VCPU */
struct salus_tsm_vcpu {
	__u64 vcpu_id;
};

/* SALUS_TSM_FINALIZE */
struct salus_tsm_finalize {
	__u64 entry_sepc;
	__u64 entry_arg;
};

/*
 * SALUS_TSM_RUN_VCPU: run vcpu_id until an exit userspace must serve.
 * in:  a0/a1 are handed to the TSM on this run (the answer to the previous
 *      exit: error/value of a forwarded ecall, the loaded value in a0 of an
 *      MMIO load; ignored by the TSM after other exits).
 * out: the exit. Interrupt exits are served inside the driver (the host
 *      takes its interrupt and reschedules) and never reach userspace; a
 *      pending signal ends the call with EINTR (call again).
 *      scause/stval/htval/htinst are what Salus reported; gpa is the
 *      faulting guest-physical address for guest page faults (20/21/23);
 *      a[0..7] are the TVM's a0..a7 for a forwarded ecall (scause 10) and
 *      a[0] the stored value of an MMIO store. resumable is 0 when Salus
 *      said the vCPU cannot run again.
 */
struct salus_tsm_run {
	__u64 vcpu_id;		/* in */
	__u64 a0;		/* in */
	__u64 a1;		/* in */
	__u64 scause;		/* out */
	__u64 stval;
	__u64 htval;
	__u64 htinst;
	__u64 gpa;
	__u64 a[8];
	__u32 resumable;
	__u32 reserved;
	/*
	 * in: a forwarded ecall with a7 == nop_eid (0: none) is answered
	 * (0, 0) inside the driver and the vCPU runs on, never reaching
	 * userspace (the in-kernel round trip salus-vmm's bench measures).
	 */
	__u64 nop_eid;
	/*
	 * out: a DBCN console_write exit (scause 10, a[7] = DBCN, a[6] = 0)
	 * carries a[0] bytes here (the TVM's call already returned a[0]).
	 */
	__u8 console[SALUS_TSM_CONSOLE_MAX];
};

/* SALUS_TSM_LAST_ERROR: the SBI error of the last failed COVH call here. */
struct salus_tsm_error {
	__s64 sbi_error;
	__u64 fid;		/* the COVH function id that failed */
};

#define SALUS_TSM_IOC 0xB5
#define SALUS_TSM_GET_INFO	_IOR(SALUS_TSM_IOC, 0x00, struct salus_tsm_info)
#define SALUS_TSM_CREATE_TVM	_IOWR(SALUS_TSM_IOC, 0x01, struct salus_tsm_create)
#define SALUS_TSM_ADD_REGION	_IOW(SALUS_TSM_IOC, 0x02, struct salus_tsm_region)
#define SALUS_TSM_ADD_MEASURED	_IOW(SALUS_TSM_IOC, 0x03, struct salus_tsm_measured)
#define SALUS_TSM_ADD_ZERO	_IOW(SALUS_TSM_IOC, 0x04, struct salus_tsm_zero)
#define SALUS_TSM_ADD_SHARED	_IOW(SALUS_TSM_IOC, 0x05, struct salus_tsm_shared)
#define SALUS_TSM_REMOVE_SHARED	_IOW(SALUS_TSM_IOC, 0x06, struct salus_tsm_shared)
#define SALUS_TSM_CREATE_VCPU	_IOW(SALUS_TSM_IOC, 0x07, struct salus_tsm_vcpu)
#define SALUS_TSM_FINALIZE	_IOW(SALUS_TSM_IOC, 0x08, struct salus_tsm_finalize)
#define SALUS_TSM_RUN_VCPU	_IOWR(SALUS_TSM_IOC, 0x09, struct salus_tsm_run)
#define SALUS_TSM_LAST_ERROR	_IOR(SALUS_TSM_IOC, 0x0a, struct salus_tsm_error)

#endif /* _UAPI_SALUS_TSM_H */
