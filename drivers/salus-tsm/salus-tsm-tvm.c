// SPDX-License-Identifier: GPL-2.0
/*
 * salus-tsm TVM lifecycle: create, regions, measured/zero/shared pages,
 * vCPUs, finalize, and teardown on the file's last close.
 */
#define pr_fmt(fmt) "salus-tsm: " fmt

#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <uapi/salus-tsm.h>

#include "salus-tsm-int.h"

#define SALUS_BATCH_4K		256	/* 4 KiB pages per conversion round */
#define SALUS_BATCH_2M		2	/* 2 MiB pages per conversion round */
#define SALUS_PIN_BATCH		512	/* user pages pinned at once */
#define SALUS_UNSHARE_BATCH	16	/* < Salus's 32 invalidated runs */
#define SALUS_DESTROY_TRIES	500	/* ~10 s of BUSY (20 ms), then give up */

/* Aligned to @size, non-empty, no wrap, and (if @bounded) not too long. */
static int salus_check_range(u64 gpa, u64 len, u64 size, bool bounded)
{
	if (!len || !IS_ALIGNED(gpa, size) || !IS_ALIGNED(len, size) ||
	    gpa + len < gpa)
		return -EINVAL;
	if (bounded && len > SALUS_TSM_MAX_CALL_BYTES)
		return -E2BIG;
	return 0;
}

/* Lock the file and find its TVM; on success the lock is held. */
static int salus_lock_tvm(struct salus_file *sf, struct salus_tvm **tvmp)
{
	if (mutex_lock_killable(&sf->lock))
		return -EINTR;
	*tvmp = sf->tvm;
	if (!*tvmp) {
		mutex_unlock(&sf->lock);
		return -ENOENT;
	}
	return 0;
}

/* ---- teardown ------------------------------------------------------ */

static void salus_shared_drop(struct salus_tvm *tvm, unsigned long idx,
			      struct page *page)
{
	xa_erase(&tvm->shared, idx);
	/* The TVM may have written it. */
	unpin_user_pages_dirty_lock(&page, 1, true);
	tvm->nshared--;
	atomic64_dec(&salus_stats.shared_pages);
}

/*
 * Destroy the TVM and give everything back. If the TSM will not destroy
 * it, every page it was given may still be in use by it: converted
 * chunks leak and shared pages stay pinned forever.
 */
static void salus_tvm_teardown(struct salus_tvm *tvm)
{
	struct sbiret r;
	unsigned long idx;
	struct page *page;
	unsigned int i;
	int tries;

	salus_spares_release(tvm);
	for (tries = 0;; tries++) {
		r = covh_call(COVH_DESTROY_TVM, tvm->id, 0, 0, 0, 0, 0);
		if (r.error != SALUS_ERR_BUSY || tries >= SALUS_DESTROY_TRIES)
			break;
		msleep(20);
	}
	if (r.error)
		pr_err("destroy_tvm(%llu): error %ld; its %lu shared pages stay pinned and its pages leak\n",
		       tvm->id, r.error, tvm->nshared);
	if (!r.error) {
		xa_for_each(&tvm->shared, idx, page) {
			salus_shared_drop(tvm, idx, page);
			cond_resched();
		}
	}
	xa_destroy(&tvm->shared);
	salus_chunks_release(tvm, !r.error);
	atomic64_dec(&salus_stats.live_tvms);
	for (i = 0; i < tvm->nvcpus; i++)
		mutex_destroy(&tvm->vcpus[i].run_lock);
	kfree(tvm->vcpus);
	kfree(tvm);
}

void salus_tvm_release(struct salus_file *sf)
{
	salus_tvm_teardown(sf->tvm);
	sf->tvm = NULL;
}

/* ---- create -------------------------------------------------------- */

static struct salus_tvm *salus_tvm_alloc(void)
{
	struct salus_tvm *tvm = kzalloc(sizeof(*tvm), GFP_KERNEL_ACCOUNT);
	unsigned int i;

	if (!tvm)
		return NULL;
	tvm->nvcpus = min_t(u64, salus_info.tvm_max_vcpus, SALUS_MAX_VCPUS);
	tvm->vcpus = kcalloc(tvm->nvcpus, sizeof(*tvm->vcpus),
			     GFP_KERNEL_ACCOUNT);
	if (!tvm->vcpus) {
		kfree(tvm);
		return NULL;
	}
	for (i = 0; i < tvm->nvcpus; i++)
		mutex_init(&tvm->vcpus[i].run_lock);
	INIT_LIST_HEAD(&tvm->blks);
	xa_init(&tvm->shared);
	return tvm;
}

static void salus_tvm_free_unused(struct salus_tvm *tvm)
{
	salus_spares_release(tvm);
	salus_chunks_release(tvm, true);
	kfree(tvm->vcpus);
	kfree(tvm);
}

/* Page directory + TVM state pages, create_tvm, the first PT pages. */
static int salus_create(struct salus_file *sf, struct salus_tvm *tvm)
{
	u64 nstate = max_t(u64, salus_info.tvm_state_pages, 1);
	unsigned int st_order = get_order(nstate << PAGE_SHIFT);
	struct salus_tvm_create_params *params;
	struct page *pd, *st;
	struct sbiret r;
	int ret;

	ret = salus_chunks_reserve(tvm, 2);
	if (ret)
		return ret;
	/* Order 2: 16 KiB, naturally 16 KiB-aligned. */
	ret = salus_alloc_converted(sf, &pd, 1, 2);
	if (ret)
		return ret;
	ret = salus_alloc_converted(sf, &st, 1, st_order);
	if (ret) {
		salus_reclaim_free(sf, &pd, 1, 2);
		return ret;
	}
	/* The params page stays host memory: the TSM only reads it. */
	params = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!params) {
		ret = -ENOMEM;
		goto reclaim;
	}
	params->tvm_page_directory_addr = page_to_phys(pd);
	params->tvm_state_addr = page_to_phys(st);
	r = salus_covh(sf, COVH_CREATE_TVM, virt_to_phys(params),
		       sizeof(*params), 0, 0, 0, 0);
	free_page((unsigned long)params);
	if (r.error) {
		ret = salus_errno(r.error);
		goto reclaim;
	}
	tvm->id = r.value;
	salus_chunk_push(tvm, pd, 2);
	salus_chunk_push(tvm, st, st_order);
	return 0;
reclaim:
	salus_reclaim_free(sf, &pd, 1, 2);
	salus_reclaim_free(sf, &st, 1, st_order);
	return ret;
}

long salus_ioc_create(struct salus_file *sf, void __user *arg)
{
	struct salus_tsm_create c;
	struct salus_tvm *tvm;
	int ret;

	if (copy_from_user(&c, arg, sizeof(c)))
		return -EFAULT;
	if (c.reserved)
		return -EINVAL;
	if (mutex_lock_killable(&sf->lock))
		return -EINTR;
	if (sf->tvm) {
		ret = -EEXIST;
		goto unlock;
	}
	tvm = salus_tvm_alloc();
	if (!tvm) {
		ret = -ENOMEM;
		goto unlock;
	}
	ret = salus_create(sf, tvm);
	if (ret) {
		salus_tvm_free_unused(tvm);
		goto unlock;
	}
	atomic64_inc(&salus_stats.live_tvms);
	ret = salus_donate_pt(sf, tvm, SALUS_PT_INITIAL);
	if (ret) {
		salus_tvm_teardown(tvm);
		goto unlock;
	}
	c.tvm_id = tvm->id;
	/* Runs read sf->tvm without the lock: publish a whole TVM. */
	smp_store_release(&sf->tvm, tvm);
unlock:
	mutex_unlock(&sf->lock);
	if (ret)
		return ret;
	return copy_to_user(arg, &c, sizeof(c)) ? -EFAULT : 0;
}

/* ---- regions, measured and zero pages ------------------------------ */

long salus_ioc_region(struct salus_file *sf, void __user *arg)
{
	struct salus_tsm_region rg;
	struct salus_tvm *tvm;
	struct sbiret r;
	int ret;

	if (copy_from_user(&rg, arg, sizeof(rg)))
		return -EFAULT;
	/* Declaring a region allocates nothing: no size bound. */
	ret = salus_check_range(rg.gpa, rg.len, SALUS_PAGE_4K, false);
	if (ret)
		return ret;
	ret = salus_lock_tvm(sf, &tvm);
	if (ret)
		return ret;
	r = salus_covh(sf, COVH_ADD_MEMORY_REGION, tvm->id, rg.gpa, rg.len,
		       0, 0, 0);
	ret = salus_errno(r.error);
	mutex_unlock(&sf->lock);
	return ret;
}

/*
 * Back [gpa, gpa+len) with fresh confidential pages: copies of @src
 * (measured) when @measured, zero pages otherwise. Pages already added when
 * a later one fails stay with the TVM (and on its chunk list).
 */
static int salus_add_private(struct salus_file *sf, struct salus_tvm *tvm,
			     u64 gpa, u64 len, u32 type, bool measured,
			     const char __user *src)
{
	unsigned int order = type == SALUS_TSM_PAGE_2M ? SALUS_ORDER_2M : 0;
	unsigned int batch = order ? SALUS_BATCH_2M : SALUS_BATCH_4K;
	u64 psz = SALUS_PAGE_4K << order;
	u64 n = len >> (PAGE_SHIFT + order), done = 0;
	struct page **pages, *bounce = NULL;
	int ret = 0;

	pages = kmalloc_array(batch, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	if (measured) {
		/* Host memory the TSM copies from (measured pages). */
		bounce = alloc_pages(GFP_KERNEL_ACCOUNT |
				     (order ? __GFP_NOWARN | __GFP_RETRY_MAYFAIL : 0),
				     order);
		if (!bounce) {
			kfree(pages);
			return -ENOMEM;
		}
	}
	while (done < n) {
		unsigned int k = min_t(u64, batch, n - done), i;

		ret = salus_chunks_reserve(tvm, k);
		if (ret)
			break;
		ret = salus_take_converted(sf, tvm, pages, k, order);
		if (ret) {
			salus_chunks_unreserve(tvm, k);
			break;
		}
		for (i = 0; i < k; i++) {
			u64 off = (done + i) * psz;

			if (measured) {
				if (copy_from_user(page_address(bounce),
						   src + off, psz)) {
					ret = -EFAULT;
					break;
				}
				ret = salus_call_pt(sf, tvm,
						    COVH_ADD_MEASURED_PAGES,
						    page_to_phys(bounce),
						    page_to_phys(pages[i]),
						    type, 1, gpa + off);
			} else {
				ret = salus_call_pt(sf, tvm,
						    COVH_ADD_ZERO_PAGES,
						    page_to_phys(pages[i]),
						    type, 1, gpa + off, 0);
			}
			if (ret)
				break;
			salus_chunk_push(tvm, pages[i], order);
		}
		/* Converted but not handed to the TSM: give them back. */
		salus_chunks_unreserve(tvm, k - i);
		salus_reclaim_free(sf, pages + i, k - i, order);
		done += i;
		if (ret)
			break;
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		cond_resched();
	}
	if (bounce)
		__free_pages(bounce, order);
	kfree(pages);
	return ret;
}

static int salus_page_size(u32 type, u64 *size)
{
	if (type == SALUS_TSM_PAGE_4K)
		*size = SALUS_PAGE_4K;
	else if (type == SALUS_TSM_PAGE_2M)
		*size = SALUS_PAGE_2M;
	else
		return -EINVAL;
	return 0;
}

long salus_ioc_measured(struct salus_file *sf, void __user *arg)
{
	struct salus_tsm_measured m;
	struct salus_tvm *tvm;
	u64 size;
	int ret;

	if (copy_from_user(&m, arg, sizeof(m)))
		return -EFAULT;
	if (m.reserved || salus_page_size(m.page_type, &size))
		return -EINVAL;
	ret = salus_check_range(m.gpa, m.len, size, true);
	if (ret)
		return ret;
	if (m.uaddr + m.len < m.uaddr)
		return -EINVAL;
	ret = salus_lock_tvm(sf, &tvm);
	if (ret)
		return ret;
	ret = salus_add_private(sf, tvm, m.gpa, m.len, m.page_type, true,
				u64_to_user_ptr(m.uaddr));
	mutex_unlock(&sf->lock);
	return ret;
}

long salus_ioc_zero(struct salus_file *sf, void __user *arg)
{
	struct salus_tsm_zero z;
	struct salus_tvm *tvm;
	u64 size;
	int ret;

	if (copy_from_user(&z, arg, sizeof(z)))
		return -EFAULT;
	if (z.reserved || salus_page_size(z.page_type, &size))
		return -EINVAL;
	ret = salus_check_range(z.gpa, z.len, size, true);
	if (ret)
		return ret;
	ret = salus_lock_tvm(sf, &tvm);
	if (ret)
		return ret;
	ret = salus_add_private(sf, tvm, z.gpa, z.len, z.page_type, false,
				NULL);
	mutex_unlock(&sf->lock);
	return ret;
}

/* ---- shared pages -------------------------------------------------- */

static int salus_add_shared(struct salus_file *sf, struct salus_tvm *tvm,
			    u64 gpa, u64 uaddr, u64 len)
{
	u64 n = len >> PAGE_SHIFT, done = 0;
	struct page **pages;
	int ret = 0;

	if (tvm->nshared + n > SALUS_MAX_SHARED)
		return -ENOSPC;
	pages = kmalloc_array(SALUS_PIN_BATCH, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	while (done < n) {
		unsigned int k = min_t(u64, SALUS_PIN_BATCH, n - done), i;
		long got;

		/* Pinned until removed or the TVM is destroyed. */
		got = pin_user_pages_fast(uaddr + (done << PAGE_SHIFT), k,
					  FOLL_WRITE | FOLL_LONGTERM, pages);
		if (got < 0) {
			ret = got;
			break;
		}
		if (got < k) {
			unpin_user_pages(pages, got);
			ret = -EFAULT;
			break;
		}
		for (i = 0; i < k; i++) {
			u64 g = gpa + ((done + i) << PAGE_SHIFT);

			ret = xa_insert(&tvm->shared, g >> PAGE_SHIFT, pages[i],
					GFP_KERNEL_ACCOUNT);
			if (ret) {
				if (ret == -EBUSY)
					ret = -EEXIST;
				break;
			}
			ret = salus_call_pt(sf, tvm, COVH_ADD_SHARED_PAGES,
					    page_to_phys(pages[i]),
					    SALUS_TSM_PAGE_4K, 1, g, 0);
			if (ret) {
				xa_erase(&tvm->shared, g >> PAGE_SHIFT);
				break;
			}
			tvm->nshared++;
			atomic64_inc(&salus_stats.shared_pages);
		}
		if (i < k)
			unpin_user_pages(pages + i, k - i);
		done += i;
		if (ret)
			break;
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		cond_resched();
	}
	kfree(pages);
	return ret;
}

long salus_ioc_add_shared(struct salus_file *sf, void __user *arg)
{
	struct salus_tsm_shared s;
	struct salus_tvm *tvm;
	int ret;

	if (copy_from_user(&s, arg, sizeof(s)))
		return -EFAULT;
	ret = salus_check_range(s.gpa, s.len, SALUS_PAGE_4K, true);
	if (ret)
		return ret;
	if (!IS_ALIGNED(s.uaddr, SALUS_PAGE_4K) || s.uaddr + s.len < s.uaddr)
		return -EINVAL;
	ret = salus_lock_tvm(sf, &tvm);
	if (ret)
		return ret;
	ret = salus_add_shared(sf, tvm, s.gpa, s.uaddr, s.len);
	mutex_unlock(&sf->lock);
	return ret;
}

/*
 * One batch of REMOVE_SHARED: invalidate (INVALID_ADDRESS = the TSM
 * already took the page back on the TVM's unshare), fence, remove, unpin.
 * An entry invalidated by an earlier, failed call is marked and skips
 * straight to fence + remove. Returns entries handled, or -errno.
 */
static int salus_unshare_batch(struct salus_file *sf, struct salus_tvm *tvm,
			       unsigned long *idx, struct page **pg, int k)
{
	int i, j, marked = 0, ret = 0;
	struct sbiret r;

	for (i = 0; i < k; i++) {
		if (xa_get_mark(&tvm->shared, idx[i], XA_MARK_0)) {
			marked++;
			continue;
		}
		/* Expected answers below are not recorded as errors. */
		r = covh_call(COVH_TVM_INVALIDATE, tvm->id,
			      idx[i] << PAGE_SHIFT, SALUS_PAGE_4K, 0, 0, 0);
		if (!r.error) {
			xa_set_mark(&tvm->shared, idx[i], XA_MARK_0);
			marked++;
		} else if (r.error == SALUS_ERR_INVALID_ADDRESS) {
			salus_shared_drop(tvm, idx[i], pg[i]);
			pg[i] = NULL;
		} else {
			/* Out of invalidated-run slots: flush, go on later. */
			if (r.error != SALUS_ERR_OUT_OF_MEMORY || !marked) {
				salus_record_err(sf, COVH_TVM_INVALIDATE,
						 r.error);
				ret = salus_errno(r.error);
			}
			break;
		}
	}
	k = i;
	if (marked) {
		r = salus_covh(sf, COVH_TVM_FENCE, tvm->id, 0, 0, 0, 0, 0);
		if (r.error)
			return salus_errno(r.error);
		for (j = 0; j < k; j++) {
			if (!pg[j])
				continue;
			r = salus_covh(sf, COVH_TVM_REMOVE, tvm->id,
				       idx[j] << PAGE_SHIFT, SALUS_PAGE_4K,
				       0, 0, 0);
			if (r.error)
				return salus_errno(r.error);
			salus_shared_drop(tvm, idx[j], pg[j]);
		}
	}
	return ret ? ret : k;
}

long salus_ioc_remove_shared(struct salus_file *sf, void __user *arg)
{
	unsigned long idx[SALUS_UNSHARE_BATCH], first, last, i;
	struct page *pg[SALUS_UNSHARE_BATCH], *page;
	struct salus_tsm_shared s;
	struct salus_tvm *tvm;
	int k, ret;

	if (copy_from_user(&s, arg, sizeof(s)))
		return -EFAULT;
	ret = salus_check_range(s.gpa, s.len, SALUS_PAGE_4K, true);
	if (ret)
		return ret;
	ret = salus_lock_tvm(sf, &tvm);
	if (ret)
		return ret;
	first = s.gpa >> PAGE_SHIFT;
	last = (s.gpa + s.len - 1) >> PAGE_SHIFT;
	/* GPAs in the range with no shared page are skipped. */
	for (;;) {
		k = 0;
		xa_for_each_range(&tvm->shared, i, page, first, last) {
			idx[k] = i;
			pg[k] = page;
			if (++k == SALUS_UNSHARE_BATCH)
				break;
		}
		if (!k)
			break;
		ret = salus_unshare_batch(sf, tvm, idx, pg, k);
		if (ret < 0)
			break;
		/* A short batch (TSM out of invalidation slots) goes on. */
		first = idx[ret - 1] + 1;
		ret = 0;
		if (first > last)
			break;
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		cond_resched();
	}
	mutex_unlock(&sf->lock);
	return ret;
}

/* ---- vCPUs and finalize -------------------------------------------- */

long salus_ioc_vcpu(struct salus_file *sf, void __user *arg)
{
	u64 nstate = max_t(u64, salus_info.tvm_vcpu_state_pages, 1);
	unsigned int order = get_order(nstate << PAGE_SHIFT);
	struct salus_tsm_vcpu v;
	struct salus_tvm *tvm;
	struct page *pg;
	struct sbiret r;
	int ret;

	if (copy_from_user(&v, arg, sizeof(v)))
		return -EFAULT;
	ret = salus_lock_tvm(sf, &tvm);
	if (ret)
		return ret;
	if (v.vcpu_id >= tvm->nvcpus) {
		ret = -EINVAL;
		goto unlock;
	}
	ret = salus_chunks_reserve(tvm, 1);
	if (ret)
		goto unlock;
	ret = salus_alloc_converted(sf, &pg, 1, order);
	if (ret) {
		salus_chunks_unreserve(tvm, 1);
		goto unlock;
	}
	r = salus_covh(sf, COVH_CREATE_VCPU, tvm->id, v.vcpu_id,
		       page_to_phys(pg), 0, 0, 0);
	if (r.error) {
		ret = salus_errno(r.error);
		salus_chunks_unreserve(tvm, 1);
		salus_reclaim_free(sf, &pg, 1, order);
		goto unlock;
	}
	salus_chunk_push(tvm, pg, order);
unlock:
	mutex_unlock(&sf->lock);
	return ret;
}

long salus_ioc_finalize(struct salus_file *sf, void __user *arg)
{
	struct salus_tsm_finalize f;
	struct salus_tvm *tvm;
	struct sbiret r;
	int ret;

	if (copy_from_user(&f, arg, sizeof(f)))
		return -EFAULT;
	ret = salus_lock_tvm(sf, &tvm);
	if (ret)
		return ret;
	/* tvm_identity_addr 0: no identity. */
	r = salus_covh(sf, COVH_FINALIZE_TVM, tvm->id, f.entry_sepc,
		       f.entry_arg, 0, 0, 0);
	ret = salus_errno(r.error);
	mutex_unlock(&sf->lock);
	return ret;
}
