// SPDX-License-Identifier: GPL-2.0
/*
 * salus-tsm: the Linux host's driver for Salus's CoVE host API (COVH).
 * This file: TSM discovery, per-CPU NACL shared memory, /dev/salus-tsm,
 * ioctl dispatch, errors and counters. See docs/salus-tsm-driver.md.
 */
#define pr_fmt(fmt) "salus-tsm: " fmt

#include <linux/build_bug.h>
#include <linux/cpuhotplug.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/page.h>

#include <uapi/salus-tsm.h>

#include "salus-tsm-int.h"

static_assert(sizeof(struct salus_tsm_raw_info) == SALUS_TSM_INFO_LEN);
static_assert(sizeof(struct salus_tvm_create_params) == 16);
static_assert(PAGE_SIZE == SALUS_PAGE_4K);

struct salus_stats salus_stats;
struct salus_tsm_raw_info salus_info;

/* ---- errors -------------------------------------------------------- */

/*
 * The errno a failed COVH call becomes (see the uapi header): the TSM's
 * verdict on arguments, overlaps and call order is EIO (the SBI code is
 * in LAST_ERROR); only these few have an errno of their own.
 */
int salus_errno(long sbi_err)
{
	switch (sbi_err) {
	case 0:
		return 0;
	case SALUS_ERR_DENIED:
	case SALUS_ERR_DENIED_LOCKED:
		return -EPERM;
	case SALUS_ERR_AUTH:
		return -EACCES;
	case SALUS_ERR_OUT_OF_MEMORY:
	case SALUS_ERR_OUT_OF_PTPAGES:
		return -ENOSPC;
	case SALUS_ERR_BUSY:
		return -EBUSY;
	default:
		return -EIO;
	}
}

void salus_record_err(struct salus_file *sf, int fid, long err)
{
	if (!sf || !err)
		return;
	spin_lock(&sf->err_lock);
	sf->last_err = err;
	sf->last_fid = fid;
	spin_unlock(&sf->err_lock);
}

/* A COVH call whose failure is recorded as this file's last error. */
struct sbiret salus_covh(struct salus_file *sf, int fid, unsigned long a0,
			 unsigned long a1, unsigned long a2, unsigned long a3,
			 unsigned long a4, unsigned long a5)
{
	struct sbiret r = covh_call(fid, a0, a1, a2, a3, a4, a5);

	salus_record_err(sf, fid, r.error);
	return r;
}

/* ---- discovery ----------------------------------------------------- */

static int salus_probe_tsm(void)
{
	struct salus_tsm_raw_info *buf;
	struct sbiret r;
	int ret = -ENODEV;

	if (sbi_probe_extension(SALUS_EID_SUPD) <= 0) {
		pr_err("no CoVE TSM: the SBI has no SUPD extension\n");
		return -ENODEV;
	}
	r = sbi_ecall(SALUS_EID_SUPD, SUPD_GET_ACTIVE_DOMAINS, 0, 0, 0, 0, 0, 0);
	/* Bit 0: the TSM lives in supervisor domain 0, the one we call. */
	if (r.error || !(r.value & 1)) {
		pr_err("no CoVE TSM: SUPD get_active_domains: error %ld, domains %#lx\n",
		       r.error, r.value);
		return -ENODEV;
	}
	if (sbi_probe_extension(SALUS_EID_COVH) <= 0) {
		pr_err("no CoVE TSM: the SBI has no COVH extension\n");
		return -ENODEV;
	}
	/* A whole page: the TSM writes it by physical address. */
	buf = (void *)get_zeroed_page(GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	r = covh_call(COVH_GET_TSM_INFO, virt_to_phys(buf), SALUS_TSM_INFO_LEN,
		      0, 0, 0, 0);
	if (r.error || r.value < SALUS_TSM_INFO_LEN) {
		pr_err("no CoVE TSM: get_tsm_info: error %ld, %ld bytes\n",
		       r.error, r.value);
		goto out;
	}
	salus_info = *buf;
	if (salus_info.tsm_state != SALUS_TSM_READY) {
		pr_err("no CoVE TSM: tsm_state %u, not READY\n",
		       salus_info.tsm_state);
		goto out;
	}
	if (!(salus_info.tsm_capabilities & BIT_ULL(5))) {
		pr_err("no CoVE TSM: no MEMORY_ALLOCATION capability (caps %#llx)\n",
		       salus_info.tsm_capabilities);
		goto out;
	}
	if (salus_info.tvm_state_pages > SALUS_MAX_STATE_PAGES ||
	    salus_info.tvm_vcpu_state_pages > SALUS_MAX_STATE_PAGES ||
	    !salus_info.tvm_max_vcpus) {
		pr_err("no CoVE TSM: unsupported tsm_info (state %llu, vcpu state %llu, max vcpus %llu)\n",
		       salus_info.tvm_state_pages,
		       salus_info.tvm_vcpu_state_pages,
		       salus_info.tvm_max_vcpus);
		goto out;
	}
	if (sbi_probe_extension(SALUS_EID_NACL) <= 0) {
		pr_err("no CoVE TSM: the SBI has no NACL extension\n");
		goto out;
	}
	ret = 0;
out:
	free_page((unsigned long)buf);
	return ret;
}

/* ---- NACL shared memory, one area per CPU --------------------------- */

struct salus_nacl {
	void *area;
	bool registered;	/* changed only on its own CPU */
	bool leaked;		/* the TSM kept it: never free */
};

static DEFINE_PER_CPU(struct salus_nacl, salus_nacl);
static int salus_cpuhp_state;

/* Runs on @cpu (an AP hotplug state). */
static int salus_cpu_online(unsigned int cpu)
{
	struct salus_nacl *n = per_cpu_ptr(&salus_nacl, cpu);
	struct sbiret r;

	/* set_shmem registers the calling hart's area. */
	if (WARN_ON_ONCE(raw_smp_processor_id() != cpu))
		return -EINVAL;
	if (n->leaked) {
		/* The TSM kept the old one: start over with a fresh area. */
		n->area = NULL;
		n->leaked = false;
	}
	if (!n->area) {
		n->area = alloc_pages_exact(SALUS_NACL_SIZE,
					    GFP_KERNEL | __GFP_ZERO);
		if (!n->area)
			return -ENOMEM;
	}
	r = nacl_set_shmem(virt_to_phys(n->area), 0);
	if (r.error) {
		pr_err("NACL set_shmem on CPU %u: error %ld\n", cpu, r.error);
		return -EIO;
	}
	WRITE_ONCE(n->registered, true);
	return 0;
}

static int salus_cpu_offline(unsigned int cpu)
{
	struct salus_nacl *n = per_cpu_ptr(&salus_nacl, cpu);
	struct sbiret r;

	if (!n->registered)
		return 0;
	WRITE_ONCE(n->registered, false);
	r = nacl_set_shmem(-1UL, -1UL);
	if (r.error) {
		n->leaked = true;
		pr_err("NACL disable on CPU %u: error %ld; area leaked\n",
		       cpu, r.error);
	}
	return 0;
}

/* This CPU's registered area, or NULL. Caller has preemption off. */
void *salus_nacl_this_cpu(void)
{
	struct salus_nacl *n = this_cpu_ptr(&salus_nacl);

	return READ_ONCE(n->registered) ? n->area : NULL;
}

static void salus_nacl_free(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		struct salus_nacl *n = per_cpu_ptr(&salus_nacl, cpu);

		if (n->area && !n->leaked && !n->registered)
			free_pages_exact(n->area, SALUS_NACL_SIZE);
		n->area = NULL;
	}
}

/* ---- the device ---------------------------------------------------- */

static int salus_open(struct inode *inode, struct file *file)
{
	struct salus_file *sf = kzalloc(sizeof(*sf), GFP_KERNEL_ACCOUNT);

	if (!sf)
		return -ENOMEM;
	mutex_init(&sf->lock);
	spin_lock_init(&sf->err_lock);
	file->private_data = sf;
	return nonseekable_open(inode, file);
}

/* Last reference gone: no ioctl can be running on this file. */
static int salus_release(struct inode *inode, struct file *file)
{
	struct salus_file *sf = file->private_data;

	if (sf->tvm)
		salus_tvm_release(sf);
	mutex_destroy(&sf->lock);
	kfree(sf);
	return 0;
}

static long salus_get_info(void __user *arg)
{
	struct salus_tsm_info info = {
		.abi_version = SALUS_TSM_ABI_VERSION,
		.tsm_state = salus_info.tsm_state,
		.tsm_impl_id = salus_info.tsm_impl_id,
		.tsm_version = salus_info.tsm_version,
		.tsm_capabilities = salus_info.tsm_capabilities,
		.tvm_state_pages = salus_info.tvm_state_pages,
		.tvm_max_vcpus = salus_info.tvm_max_vcpus,
		.tvm_vcpu_state_pages = salus_info.tvm_vcpu_state_pages,
		.converted_pages = atomic64_read(&salus_stats.converted_pages),
		.shared_pages = atomic64_read(&salus_stats.shared_pages),
		.leaked_pages = atomic64_read(&salus_stats.leaked_pages),
		.live_tvms = atomic64_read(&salus_stats.live_tvms),
	};

	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long salus_last_error(struct salus_file *sf, void __user *arg)
{
	struct salus_tsm_error e = {};

	spin_lock(&sf->err_lock);
	e.sbi_error = sf->last_err;
	e.fid = sf->last_fid;
	spin_unlock(&sf->err_lock);
	return copy_to_user(arg, &e, sizeof(e)) ? -EFAULT : 0;
}

static long salus_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct salus_file *sf = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case SALUS_TSM_GET_INFO:
		return salus_get_info(uarg);
	case SALUS_TSM_LAST_ERROR:
		return salus_last_error(sf, uarg);
	case SALUS_TSM_CREATE_TVM:
		return salus_ioc_create(sf, uarg);
	case SALUS_TSM_ADD_REGION:
		return salus_ioc_region(sf, uarg);
	case SALUS_TSM_ADD_MEASURED:
		return salus_ioc_measured(sf, uarg);
	case SALUS_TSM_ADD_ZERO:
		return salus_ioc_zero(sf, uarg);
	case SALUS_TSM_ADD_SHARED:
		return salus_ioc_add_shared(sf, uarg);
	case SALUS_TSM_REMOVE_SHARED:
		return salus_ioc_remove_shared(sf, uarg);
	case SALUS_TSM_CREATE_VCPU:
		return salus_ioc_vcpu(sf, uarg);
	case SALUS_TSM_FINALIZE:
		return salus_ioc_finalize(sf, uarg);
	case SALUS_TSM_RUN_VCPU:
		return salus_ioc_run(sf, uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations salus_fops = {
	.owner = THIS_MODULE,
	.open = salus_open,
	.release = salus_release,
	.unlocked_ioctl = salus_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice salus_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "salus-tsm",
	.fops = &salus_fops,
	.mode = 0600,
};

/* ---- debugfs ------------------------------------------------------- */

static struct dentry *salus_debugfs;

static int salus_debug_stats_show(struct seq_file *m, void *unused)
{
	seq_printf(m, "converted_pages %lld\n",
		   atomic64_read(&salus_stats.converted_pages));
	seq_printf(m, "shared_pages %lld\n",
		   atomic64_read(&salus_stats.shared_pages));
	seq_printf(m, "leaked_pages %lld\n",
		   atomic64_read(&salus_stats.leaked_pages));
	seq_printf(m, "live_tvms %lld\n",
		   atomic64_read(&salus_stats.live_tvms));
	seq_printf(m, "runs %lld\n", atomic64_read(&salus_stats.runs));
	seq_printf(m, "interrupt_exits %lld\n",
		   atomic64_read(&salus_stats.interrupt_exits));
	seq_printf(m, "kernel_nops %lld\n", atomic64_read(&salus_stats.kernel_nops));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(salus_debug_stats);

/* ---- module -------------------------------------------------------- */

static int __init salus_init(void)
{
	int ret;

	ret = salus_probe_tsm();
	if (ret)
		return ret;
	ret = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "salus-tsm:online",
				salus_cpu_online, salus_cpu_offline);
	if (ret < 0) {
		pr_err("no CoVE TSM: NACL shared memory setup failed (%d)\n",
		       ret);
		salus_nacl_free();
		return -ENODEV;
	}
	salus_cpuhp_state = ret;
	ret = misc_register(&salus_misc);
	if (ret) {
		cpuhp_remove_state(salus_cpuhp_state);
		salus_nacl_free();
		return ret;
	}
	salus_debugfs = debugfs_create_dir("salus-tsm", NULL);
	debugfs_create_file("stats", 0400, salus_debugfs, NULL,
			    &salus_debug_stats_fops);
	pr_info("loaded: CoVE TSM impl %u version %#x, %llu TVM state pages, %llu vCPUs max, %llu pages per vCPU\n",
		salus_info.tsm_impl_id, salus_info.tsm_version,
		salus_info.tvm_state_pages, salus_info.tvm_max_vcpus,
		salus_info.tvm_vcpu_state_pages);
	return 0;
}

/* No file is open (each holds a module reference), so no TVM exists. */
static void __exit salus_exit(void)
{
	debugfs_remove(salus_debugfs);
	misc_deregister(&salus_misc);
	cpuhp_remove_state(salus_cpuhp_state);
	salus_nacl_free();
	if (atomic64_read(&salus_stats.leaked_pages))
		pr_err("%lld pages the TSM kept stay leaked\n",
		       atomic64_read(&salus_stats.leaked_pages));
}

module_init(salus_init);
module_exit(salus_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Host driver for the Salus CoVE TSM (confidential VMs)");
