// SPDX-License-Identifier: GPL-2.0
/*
 * salus-tsm confidential memory: allocation, conversion with the
 * global/local fence protocol, reclaim, the per-TVM chunk lists and
 * page-table page donation.
 */
#define pr_fmt(fmt) "salus-tsm: " fmt

#include <linux/cpu.h>
#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/smp.h>

#include "salus-tsm-int.h"

/*
 * One conversion + fence at a time, driver-wide: global_fence answers
 * ALREADY_STARTED while another is in flight.
 */
static DEFINE_MUTEX(salus_convert_lock);

/* ---- chunk lists --------------------------------------------------- */

/* Make room to record @n more chunks without allocating later. */
int salus_chunks_reserve(struct salus_tvm *tvm, unsigned long n)
{
	while (tvm->free_slots < tvm->reserved + n) {
		struct salus_chunk_blk *b = kzalloc(sizeof(*b),
						    GFP_KERNEL_ACCOUNT);

		if (!b)
			return -ENOMEM;
		list_add_tail(&b->link, &tvm->blks);
		if (!tvm->cur)
			tvm->cur = b;
		tvm->free_slots += SALUS_BLK_ENTS;
	}
	tvm->reserved += n;
	return 0;
}

void salus_chunks_unreserve(struct salus_tvm *tvm, unsigned long n)
{
	if (WARN_ON(n > tvm->reserved))
		n = tvm->reserved;
	tvm->reserved -= n;
}

/* Record a chunk the TVM now holds; uses a reserved slot. */
void salus_chunk_push(struct salus_tvm *tvm, struct page *page,
		      unsigned int order)
{
	struct salus_chunk_blk *b = tvm->cur;

	/* Reserved slots exist: blocks after a full one are allocated. */
	if (b->n == SALUS_BLK_ENTS) {
		b = list_next_entry(b, link);
		tvm->cur = b;
	}
	WARN_ON(!tvm->reserved);
	tvm->reserved--;
	tvm->free_slots--;
	b->ent[b->n].page = page;
	b->ent[b->n].order = order;
	b->n++;
}

/* ---- conversion ---------------------------------------------------- */

static void salus_local_fence_fn(void *arg)
{
	atomic_long_t *err = arg;
	struct sbiret r = covh_call(COVH_LOCAL_FENCE, 0, 0, 0, 0, 0, 0);

	if (r.error)
		atomic_long_set(err, r.error);
}

/*
 * global_fence, then local_fence on every online CPU (this one too).
 * Called with salus_convert_lock and cpus_read_lock held so the set of
 * CPUs the TSM waits for cannot change under us.
 */
static int salus_fence_all(struct salus_file *sf)
{
	atomic_long_t err = ATOMIC_LONG_INIT(0);
	atomic_long_t stale = ATOMIC_LONG_INIT(0);
	struct sbiret r;
	int tries;

	for (tries = 0; tries < 3; tries++) {
		r = salus_covh(sf, COVH_GLOBAL_FENCE, 0, 0, 0, 0, 0, 0);
		if (r.error != SALUS_ERR_ALREADY_STARTED)
			break;
		/* A fence left incomplete: finish it on every CPU, retry. */
		on_each_cpu(salus_local_fence_fn, &stale, 1);
	}
	if (r.error) {
		pr_err("global_fence: error %ld\n", r.error);
		return -EIO;
	}
	on_each_cpu(salus_local_fence_fn, &err, 1);
	if (atomic_long_read(&err)) {
		salus_record_err(sf, COVH_LOCAL_FENCE, atomic_long_read(&err));
		pr_err("local_fence: error %ld\n", atomic_long_read(&err));
		return -EIO;
	}
	return 0;
}

/* The chunk is never freed: Linux must not reuse what the TSM may hold. */
static void salus_leak(struct page *page, unsigned int order, const char *why,
		       long err)
{
	phys_addr_t pa = page_to_phys(page);

	atomic64_sub(1 << order, &salus_stats.converted_pages);
	atomic64_add(1 << order, &salus_stats.leaked_pages);
	pr_err_ratelimited("%s (error %ld): leaking %u pages at %pa\n", why,
			   err, 1U << order, &pa);
}

/*
 * Give converted chunks back to Linux; a chunk the TSM refuses leaks.
 * Returns the number of 4 KiB pages leaked.
 */
unsigned long salus_reclaim_free(struct salus_file *sf, struct page **pages,
				 unsigned int n, unsigned int order)
{
	unsigned long leaked = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct sbiret r = salus_covh(sf, COVH_RECLAIM_PAGES,
					     page_to_phys(pages[i]), 1 << order,
					     0, 0, 0, 0);

		if (r.error) {
			salus_leak(pages[i], order, "reclaim_pages failed",
				   r.error);
			leaked += 1UL << order;
			continue;
		}
		atomic64_sub(1 << order, &salus_stats.converted_pages);
		__free_pages(pages[i], order);
	}
	return leaked;
}

/*
 * Allocate @n zeroed chunks of 2^@order pages (naturally aligned) and
 * convert them; on success all are confidential and fenced. On failure
 * nothing is left converted (or it is leaked) and -errno is returned.
 */
int salus_alloc_converted(struct salus_file *sf, struct page **pages,
			  unsigned int n, unsigned int order)
{
	gfp_t gfp = SALUS_GFP | (order ? __GFP_NOWARN | __GFP_RETRY_MAYFAIL : 0);
	unsigned int i, nconv;
	int ret = 0, fret = 0;

	for (i = 0; i < n; i++) {
		pages[i] = alloc_pages(gfp, order);
		if (!pages[i]) {
			while (i--)
				__free_pages(pages[i], order);
			return -ENOMEM;
		}
	}

	mutex_lock(&salus_convert_lock);
	cpus_read_lock();
	for (nconv = 0; nconv < n; nconv++) {
		struct sbiret r = salus_covh(sf, COVH_CONVERT_PAGES,
					     page_to_phys(pages[nconv]),
					     1 << order, 0, 0, 0, 0);

		if (r.error) {
			ret = r.error == SALUS_ERR_OUT_OF_MEMORY ? -ENOSPC : -EIO;
			break;
		}
	}
	atomic64_add((u64)nconv << order, &salus_stats.converted_pages);
	/* Converted-but-unfenced pages are unusable: always fence them. */
	if (nconv)
		fret = salus_fence_all(sf);
	cpus_read_unlock();
	mutex_unlock(&salus_convert_lock);

	if (!ret && !fret)
		return 0;
	if (fret) {
		/* Stuck between host and confidential: never give them back. */
		for (i = 0; i < nconv; i++)
			salus_leak(pages[i], order, "fence failed", fret);
		ret = fret;
	} else {
		salus_reclaim_free(sf, pages, nconv, order);
	}
	for (i = nconv; i < n; i++)
		__free_pages(pages[i], order);
	return ret;
}

/*
 * @k converted chunks for @tvm: small 4 KiB requests come from its spares,
 * refilled a batch at a time (one fence for the batch); the rest are
 * converted now. Same contract as salus_alloc_converted().
 */
int salus_take_converted(struct salus_file *sf, struct salus_tvm *tvm,
			 struct page **pages, unsigned int k, unsigned int order)
{
	unsigned int i;

	if (order || k > SALUS_SPARE_4K)
		return salus_alloc_converted(sf, pages, k, order);
	if (tvm->nspare < k) {
		unsigned int want = SALUS_SPARE_4K - tvm->nspare;

		/* A batch that cannot be had: just what is asked. */
		if (salus_alloc_converted(sf, tvm->spare + tvm->nspare, want, 0))
			return salus_alloc_converted(sf, pages, k, order);
		tvm->nspare += want;
	}
	for (i = 0; i < k; i++)
		pages[i] = tvm->spare[--tvm->nspare];
	return 0;
}

/* The spares were never the TSM's: reclaim and free them. */
void salus_spares_release(struct salus_tvm *tvm)
{
	salus_reclaim_free(NULL, tvm->spare, tvm->nspare, 0);
	tvm->nspare = 0;
}

/* ---- page-table pages ---------------------------------------------- */

/* Donate up to @n more page-table pages (bounded per TVM). */
int salus_donate_pt(struct salus_file *sf, struct salus_tvm *tvm,
		    unsigned int n)
{
	struct page *pages[SALUS_PT_INITIAL];
	unsigned int i;
	int ret;

	n = min3(n, (unsigned int)ARRAY_SIZE(pages),
		 (unsigned int)SALUS_TSM_MAX_PT_PAGES - tvm->pt_pages);
	if (!n)
		return -ENOSPC;
	ret = salus_chunks_reserve(tvm, n);
	if (ret)
		return ret;
	ret = salus_alloc_converted(sf, pages, n, 0);
	if (ret) {
		salus_chunks_unreserve(tvm, n);
		return ret;
	}
	for (i = 0; i < n; i++) {
		struct sbiret r = salus_covh(sf, COVH_ADD_PT_PAGES, tvm->id,
					     page_to_phys(pages[i]), 1,
					     0, 0, 0);

		if (r.error) {
			ret = salus_errno(r.error);
			break;
		}
		salus_chunk_push(tvm, pages[i], 0);
		tvm->pt_pages++;
	}
	salus_chunks_unreserve(tvm, n - i);
	salus_reclaim_free(sf, pages + i, n - i, 0);
	return ret;
}

/*
 * A TVM-mapping COVH call (tvm id first) retried after donating more
 * page-table pages while the TSM answers OUT_OF_PTPAGES. Returns -errno.
 */
int salus_call_pt(struct salus_file *sf, struct salus_tvm *tvm, int fid,
		  unsigned long a1, unsigned long a2, unsigned long a3,
		  unsigned long a4, unsigned long a5)
{
	for (;;) {
		/* An OUT_OF_PTPAGES we cure is not this file's last error. */
		struct sbiret r = covh_call(fid, tvm->id, a1, a2, a3, a4, a5);
		int ret;

		if (r.error != SALUS_ERR_OUT_OF_PTPAGES) {
			salus_record_err(sf, fid, r.error);
			return salus_errno(r.error);
		}
		ret = salus_donate_pt(sf, tvm, SALUS_PT_STEP);
		if (ret) {
			/* At the per-TVM bound: the shortage is the error. */
			if (ret == -ENOSPC)
				salus_record_err(sf, fid, r.error);
			return ret;
		}
	}
}

/*
 * Free every recorded chunk: reclaimed and freed when @reclaim (the TVM
 * is destroyed), else all leaked (the TSM may still use them).
 */
void salus_chunks_release(struct salus_tvm *tvm, bool reclaim)
{
	struct salus_chunk_blk *b, *tmp;
	unsigned long leaked = 0;
	unsigned int i;

	list_for_each_entry_safe(b, tmp, &tvm->blks, link) {
		for (i = 0; i < b->n; i++) {
			struct salus_chunk *c = &b->ent[i];

			if (reclaim) {
				leaked += salus_reclaim_free(NULL, &c->page, 1,
							     c->order);
			} else {
				salus_leak(c->page, c->order,
					   "TVM not destroyed", 0);
				leaked += 1UL << c->order;
			}
			/* The TSM scrubs each reclaimed chunk: take breaks. */
			cond_resched();
		}
		list_del(&b->link);
		kfree(b);
	}
	tvm->cur = NULL;
	tvm->free_slots = 0;
	tvm->reserved = 0;
	if (leaked)
		pr_err("TVM %llu: %lu pages leaked (%lld in all)\n", tvm->id,
		       leaked, atomic64_read(&salus_stats.leaked_pages));
}
