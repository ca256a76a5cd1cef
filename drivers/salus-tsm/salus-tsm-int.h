/* SPDX-License-Identifier: GPL-2.0 */
/* salus-tsm internal state shared by the driver's .c files. */
#ifndef _SALUS_TSM_INT_H
#define _SALUS_TSM_INT_H

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/xarray.h>

#include <uapi/salus-tsm.h>

#include "salus-tsm-sbi.h"

#define SALUS_PAGE_4K		4096ULL
#define SALUS_PAGE_2M		(2ULL << 20)
#define SALUS_ORDER_2M		9
/* Charged to the caller's memcg; never mapped to user space. */
#define SALUS_GFP		(GFP_KERNEL_ACCOUNT | __GFP_ZERO)

#define SALUS_PT_INITIAL	16	/* PT pages donated at CREATE_TVM */
#define SALUS_SPARE_4K		32	/* 4 KiB pages converted ahead per TVM */
#define SALUS_PT_STEP		8	/* more on each OUT_OF_PTPAGES */
#define SALUS_MAX_SHARED	65536	/* shared pages pinned per TVM */
#define SALUS_MAX_VCPUS		1024	/* cap on tsm_info.tvm_max_vcpus */
#define SALUS_MAX_STATE_PAGES	512	/* refuse a TSM asking for more */

/* A converted, physically contiguous block owned by one TVM. */
struct salus_chunk {
	struct page *page;
	unsigned int order;
};

#define SALUS_BLK_ENTS	250
struct salus_chunk_blk {
	struct list_head link;
	unsigned int n;
	struct salus_chunk ent[SALUS_BLK_ENTS];
};

struct salus_vcpu {
	struct mutex run_lock;	/* trylock: one runner per vCPU */
	struct salus_tsm_run run;	/* the run ioctl's buffer (under run_lock) */
};

struct salus_tvm {
	u64 id;
	unsigned int nvcpus;
	struct salus_vcpu *vcpus;
	unsigned int pt_pages;
	/*
	 * Converted chunks. Slots are reserved before a conversion so that
	 * recording a chunk the TSM now holds can never fail.
	 */
	struct list_head blks;
	struct salus_chunk_blk *cur;
	unsigned long free_slots;
	unsigned long reserved;
	/*
	 * 4 KiB pages converted ahead, not yet the TSM's: small adds (demand
	 * faults) take them, so one fence serves SALUS_SPARE_4K faults.
	 * Under the file mutex; reclaimed when the TVM goes.
	 */
	struct page *spare[SALUS_SPARE_4K];
	unsigned int nspare;
	/* Shared pages: gpa >> 12 -> pinned page; XA_MARK_0 = invalidated. */
	struct xarray shared;
	unsigned long nshared;
};

struct salus_file {
	struct mutex lock;	/* TVM state changes; never held by a run */
	struct salus_tvm *tvm;	/* published once with smp_store_release */
	spinlock_t err_lock;
	s64 last_err;
	u64 last_fid;
};

/* Driver-wide counters (GET_INFO, debugfs). */
struct salus_stats {
	atomic64_t converted_pages;
	atomic64_t shared_pages;
	atomic64_t leaked_pages;
	atomic64_t live_tvms;
	/* debugfs only */
	atomic64_t runs;		/* run_tvm_vcpu ecalls */
	atomic64_t interrupt_exits;	/* served inside the driver */
	atomic64_t kernel_nops;		/* nop_eid ecalls answered inside */
};

extern struct salus_stats salus_stats;
extern struct salus_tsm_raw_info salus_info;

/* main */
void salus_record_err(struct salus_file *sf, int fid, long err);
int salus_errno(long sbi_err);
struct sbiret salus_covh(struct salus_file *sf, int fid, unsigned long a0,
			 unsigned long a1, unsigned long a2, unsigned long a3,
			 unsigned long a4, unsigned long a5);
void *salus_nacl_this_cpu(void);

/* mem */
int salus_chunks_reserve(struct salus_tvm *tvm, unsigned long n);
void salus_chunks_unreserve(struct salus_tvm *tvm, unsigned long n);
void salus_chunk_push(struct salus_tvm *tvm, struct page *page,
		      unsigned int order);
int salus_alloc_converted(struct salus_file *sf, struct page **pages,
			  unsigned int n, unsigned int order);
unsigned long salus_reclaim_free(struct salus_file *sf, struct page **pages,
				 unsigned int n, unsigned int order);
int salus_donate_pt(struct salus_file *sf, struct salus_tvm *tvm,
		    unsigned int n);
int salus_call_pt(struct salus_file *sf, struct salus_tvm *tvm, int fid,
		  unsigned long a1, unsigned long a2, unsigned long a3,
		  unsigned long a4, unsigned long a5);
void salus_chunks_release(struct salus_tvm *tvm, bool reclaim);
int salus_take_converted(struct salus_file *sf, struct salus_tvm *tvm,
			 struct page **pages, unsigned int k, unsigned int order);
void salus_spares_release(struct salus_tvm *tvm);

/* tvm */
long salus_ioc_create(struct salus_file *sf, void __user *arg);
long salus_ioc_region(struct salus_file *sf, void __user *arg);
long salus_ioc_measured(struct salus_file *sf, void __user *arg);
long salus_ioc_zero(struct salus_file *sf, void __user *arg);
long salus_ioc_add_shared(struct salus_file *sf, void __user *arg);
long salus_ioc_remove_shared(struct salus_file *sf, void __user *arg);
long salus_ioc_vcpu(struct salus_file *sf, void __user *arg);
long salus_ioc_finalize(struct salus_file *sf, void __user *arg);
void salus_tvm_release(struct salus_file *sf);

/* run */
long salus_ioc_run(struct salus_file *sf, void __user *arg);

#endif /* _SALUS_TSM_INT_H */
