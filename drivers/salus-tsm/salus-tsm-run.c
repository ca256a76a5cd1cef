// SPDX-License-Identifier: GPL-2.0
/*
 * salus-tsm SALUS_TSM_RUN_VCPU: run_tvm_vcpu with this CPU's NACL shared
 * memory, the exit cause read from scause/stval right after the ecall.
 */
#define pr_fmt(fmt) "salus-tsm: " fmt

#include <linux/irqflags.h>
#include <linux/nospec.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include <uapi/salus-tsm.h>

#include "salus-tsm-int.h"

#define SCAUSE_INTERRUPT	BIT_ULL(63)
#define GPR_A0			10

struct salus_raw_exit {
	long error;
	long value;
	unsigned long scause;
	unsigned long stval;
};

/*
 * The one ecall sbi_ecall() cannot do: scause/stval are read in the same
 * asm block, with interrupts off, so no trap can overwrite them first.
 */
static __always_inline void salus_run_ecall(u64 tvm_id, u64 vcpu_id,
					    struct salus_raw_exit *x)
{
	register unsigned long a0 asm("a0") = tvm_id;
	register unsigned long a1 asm("a1") = vcpu_id;
	register unsigned long a6 asm("a6") = COVH_RUN_VCPU;
	register unsigned long a7 asm("a7") = SALUS_EID_COVH;
	unsigned long scause, stval;

	asm volatile("ecall\n\t"
		     "csrr %2, scause\n\t"
		     "csrr %3, stval"
		     : "+r" (a0), "+r" (a1), "=&r" (scause), "=&r" (stval)
		     : "r" (a6), "r" (a7)
		     : "memory");
	x->error = a0;
	x->value = a1;
	x->scause = scause;
	x->stval = stval;
}

static inline u64 *nacl_slot(void *nacl, unsigned int off)
{
	return (u64 *)((char *)nacl + off);
}

static inline u64 *nacl_gpr(void *nacl, unsigned int x)
{
	return nacl_slot(nacl, SALUS_NACL_GPR_OFF(x));
}

/* One run on this CPU; false when this CPU has no NACL area. */
static bool salus_run_once(u64 tvm_id, u64 vcpu_id, struct salus_tsm_run *run,
			   struct salus_raw_exit *x)
{
	unsigned int htval_off = salus_nacl_csr_off(SALUS_CSR_HTVAL);
	unsigned int htinst_off = salus_nacl_csr_off(SALUS_CSR_HTINST);
	unsigned long flags;
	void *nacl;
	int k;

	preempt_disable();
	local_irq_save(flags);
	nacl = salus_nacl_this_cpu();
	if (nacl) {
		/*
		 * Every time: we may be on another CPU than last run. a2..a7
		 * are cleared so nothing another TVM left here reads back.
		 */
		WRITE_ONCE(*nacl_gpr(nacl, GPR_A0), run->a0);
		WRITE_ONCE(*nacl_gpr(nacl, GPR_A0 + 1), run->a1);
		for (k = 2; k < 8; k++)
			WRITE_ONCE(*nacl_gpr(nacl, GPR_A0 + k), 0);
		salus_run_ecall(tvm_id, vcpu_id, x);
		run->htval = READ_ONCE(*nacl_slot(nacl, htval_off));
		run->htinst = READ_ONCE(*nacl_slot(nacl, htinst_off));
		for (k = 0; k < 8; k++)
			run->a[k] = READ_ONCE(*nacl_gpr(nacl, GPR_A0 + k));
		if (x->scause == 10 && run->a[7] == SALUS_EID_DBCN && run->a[6] == 0 &&
		    run->a[0] <= SALUS_TSM_CONSOLE_MAX)
			memcpy(run->console, (char *)nacl + SALUS_NACL_CONSOLE_OFF, run->a[0]);
	}
	/* A host interrupt that ended the run is taken here. */
	local_irq_restore(flags);
	preempt_enable();
	return nacl;
}

static long salus_run_loop(struct salus_file *sf, struct salus_tvm *tvm,
			   u64 vcpu_id, struct salus_tsm_run *run)
{
	struct salus_raw_exit x;

	for (;;) {
		if (!salus_run_once(tvm->id, vcpu_id, run, &x)) {
			pr_warn_ratelimited("CPU without NACL shared memory\n");
			return -EIO;
		}
		atomic64_inc(&salus_stats.runs);
		if (x.error) {
			salus_record_err(sf, COVH_RUN_VCPU, x.error);
			return salus_errno(x.error);
		}
		/* Interrupt exits never reach userspace. */
		if (!x.value && (x.scause & SCAUSE_INTERRUPT)) {
			atomic64_inc(&salus_stats.interrupt_exits);
			if (signal_pending(current))
				return -EINTR;
			cond_resched();
			continue;
		}
		/* The in-kernel answer of the bench (nop_eid). */
		if (!x.value && x.scause == 10 && run->nop_eid && run->a[7] == run->nop_eid) {
			atomic64_inc(&salus_stats.kernel_nops);
			run->a0 = 0;
			run->a1 = 0;
			/*
			 * Only a fatal signal ends the call here: after EINTR the
			 * caller would hand its old a0/a1 to this answered ecall.
			 */
			if (fatal_signal_pending(current))
				return -EINTR;
			cond_resched();
			continue;
		}
		run->scause = x.scause;
		run->stval = x.stval;
		switch (x.scause) {
		case 20:	/* guest instruction page fault */
		case 21:	/* guest load page fault */
		case 23:	/* guest store page fault */
			run->gpa = (run->htval << 2) | (x.stval & 3);
			break;
		default:
			run->gpa = 0;
		}
		run->resumable = !x.value;
		run->reserved = 0;
		return 0;
	}
}

long salus_ioc_run(struct salus_file *sf, void __user *arg)
{
	/* Pairs with the release in salus_ioc_create(): a whole TVM. */
	struct salus_tvm *tvm = smp_load_acquire(&sf->tvm);
	struct salus_tsm_run __user *urun = arg;
	struct salus_tsm_run *run;
	struct salus_vcpu *vcpu;
	u64 vcpu_id;
	u32 reserved;
	long ret;

	if (get_user(vcpu_id, &urun->vcpu_id) || get_user(reserved, &urun->reserved))
		return -EFAULT;
	if (reserved)
		return -EINVAL;
	if (!tvm)
		return -ENOENT;
	if (vcpu_id >= tvm->nvcpus)
		return -EINVAL;
	vcpu_id = array_index_nospec(vcpu_id, tvm->nvcpus);
	vcpu = &tvm->vcpus[vcpu_id];
	/*
	 * Whether the vCPU exists and the TVM is finalized is the TSM's to
	 * say. One runner per vCPU; other vCPUs run in parallel. The
	 * vCPU's own buffer (not the stack: it holds console bytes).
	 */
	if (!mutex_trylock(&vcpu->run_lock))
		return -EBUSY;
	run = &vcpu->run;
	if (copy_from_user(run, urun, offsetof(struct salus_tsm_run, console))) {
		ret = -EFAULT;
		goto out;
	}
	run->vcpu_id = vcpu_id;
	ret = salus_run_loop(sf, tvm, vcpu_id, run);
	if (!ret && copy_to_user(urun, run, sizeof(*run)))
		ret = -EFAULT;
out:
	mutex_unlock(&vcpu->run_lock);
	return ret;
}
