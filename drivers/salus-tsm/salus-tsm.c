// SPDX-License-Identifier: GPL-2.0
/*
 * Placeholder for salus-tsm.ko: registers /dev/salus-tsm (a misc device
 * with no operations beyond open) and says so, so that `make kmod`,
 * `make rootfs` and the boot check have a module to build, package and
 * load. The real driver replaces this file; it makes no SBI calls.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>

#include <uapi/salus-tsm.h>

static const struct file_operations salus_tsm_fops = {
	.owner = THIS_MODULE,
};

static struct miscdevice salus_tsm_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "salus-tsm",
	.fops = &salus_tsm_fops,
};

static int __init salus_tsm_init(void)
{
	int ret = misc_register(&salus_tsm_dev);

	if (ret)
		return ret;
	pr_info("salus-tsm: placeholder loaded (ABI %d)\n", SALUS_TSM_ABI_VERSION);
	return 0;
}

static void __exit salus_tsm_exit(void)
{
	misc_deregister(&salus_tsm_dev);
}

module_init(salus_tsm_init);
module_exit(salus_tsm_exit);
MODULE_DESCRIPTION("Salus TSM host driver (placeholder)");
MODULE_LICENSE("GPL");
