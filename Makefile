# Salus: a micro hypervisor for RISC-V.  `make help` lists the targets.

# ---- knobs (override on the command line) ---------------------------------
# QEMU: a path to qemu-system-riscv64, or a QEMU build tree containing it.
QEMU ?= qemu-system-riscv64
NCPU ?= 2
# Guest RAM in MiB.
MEM_SIZE ?= 2048
MACHINE ?= virt,aia=aplic-imsic,aia-guests=3
CPU ?= rv64,v=true,vlen=256,sstc=true,svadu=true,zknh=true
EXTRA_QEMU_ARGS ?=
# Where the host kernel is loaded by QEMU's guest-loader.
HOST_ADDR ?= 0xc0200000

# ---- derived --------------------------------------------------------------
TARGET := riscv64gc-unknown-none-elf
# The host's userspace programs (salus-vmm).
VMM_TARGET := riscv64gc-unknown-linux-gnu
BUILD := build
RELDIR := target/$(TARGET)/release
QEMU_BIN := $(shell if [ -d "$(QEMU)" ]; then \
	for c in "$(QEMU)/qemu-system-riscv64" "$(QEMU)/build/qemu-system-riscv64"; do \
	  [ -x "$$c" ] && { echo "$$c"; break; }; done; else echo "$(QEMU)"; fi)
OBJCOPY = $(shell rustc --print sysroot)/lib/rustlib/$(shell rustc -vV | sed -n 's/^host: //p')/bin/llvm-objcopy

SALUS_ELF := $(BUILD)/salus.elf
TELLUS_BIN := $(BUILD)/tellus.bin
GUESTVM_BIN := $(BUILD)/guestvm.bin

QEMU_CMD = $(QEMU_BIN) -M $(MACHINE) -cpu $(CPU) -smp $(NCPU) -m $(MEM_SIZE) \
	-nographic -bios default -kernel $(SALUS_ELF)

export QEMU_BIN

.PHONY: help setup salus tellus guestvm tvm-shim run_tellus fuzz test test-unit test-qemu bench fmt clippy clean \
	linux kmod rootfs linux-images linux-pin linux-check-bare linux-bench-bare linux-run-bare vmm \
	run_linux run_buildroot run_debian run_linux_tvm run_linux_tvm_shell linux-tvm-bundle

help:
	@echo "make run_tellus   build Salus + tellus and run the tellus suite in QEMU"
	@echo "make run_linux    Salus + the Debian kernel + initramfs (shell on the console, ssh -p $(SSH_PORT) root@localhost)"
	@echo "make run_buildroot / run_debian   the same with a root disk (BUILDROOT= / DEBIAN=)"
	@echo "make run_linux_tvm   the Debian kernel as a 2-vCPU confidential VM under tellus (docs/linux-tvm.md)"
	@echo "make test         host unit tests + QEMU integration tests"
	@echo "make bench        instruction-count benchmarks under -icount"
	@echo "make fuzz         randomized COVH sequences from every hart (SEED=$(SEED) ITER=$(ITER) NCPU=4 FUZZ_ARGS=)"
	@echo "make salus|tellus|guestvm   build one image into $(BUILD)/"
	@echo "make vmm          salus-vmm, the host's userspace VMM (static riscv64 Linux): $(BUILD)/linux/salus-vmm"
	@echo "make setup        install the Rust target and QEMU >= 9.2 (idempotent)"
	@echo "make linux|kmod|rootfs   the Debian kernel, salus-tsm.ko for it, the initramfs (scripts/linux/README.md)"
	@echo "make linux-pin    move the Debian pins (kernel set + rootfs packages) to the archive's current versions"
	@echo "vars: QEMU=$(QEMU) NCPU=$(NCPU) MEM_SIZE=$(MEM_SIZE) MACHINE=$(MACHINE) CPU=$(CPU) EXTRA_QEMU_ARGS=$(EXTRA_QEMU_ARGS)"

setup:
	@QEMU_BIN="$(QEMU_BIN)" ./scripts/setup.sh

$(BUILD):
	@mkdir -p $(BUILD)

salus: setup $(BUILD)
	cargo build --release -p salus --target $(TARGET)
	cp $(RELDIR)/salus $(SALUS_ELF)

tellus: setup $(BUILD) guestvm
	cargo build --release -p tellus --target $(TARGET)
	cp $(RELDIR)/tellus $(BUILD)/tellus.elf
	$(OBJCOPY) -O binary $(BUILD)/tellus.elf $(TELLUS_BIN)

guestvm: setup $(BUILD)
	cargo build --release -p guestvm --target $(TARGET)
	cp $(RELDIR)/guestvm $(BUILD)/guestvm.elf
	$(OBJCOPY) -O binary $(BUILD)/guestvm.elf $(GUESTVM_BIN).tmp
	@# Unchanged contents keep their mtime: the initramfs that carries it is not rebuilt.
	@if cmp -s $(GUESTVM_BIN).tmp $(GUESTVM_BIN); then rm $(GUESTVM_BIN).tmp; else mv $(GUESTVM_BIN).tmp $(GUESTVM_BIN); fi

# The measured boot shim of the Linux TVM (docs/linux-tvm.md).
TVM_SHIM_BIN := $(BUILD)/tvm-shim.bin
tvm-shim: setup $(BUILD)
	cargo build --release -p tvm-shim --target $(TARGET)
	cp $(RELDIR)/tvm-shim $(BUILD)/tvm-shim.elf
	$(OBJCOPY) -O binary $(BUILD)/tvm-shim.elf $(TVM_SHIM_BIN).tmp
	@if cmp -s $(TVM_SHIM_BIN).tmp $(TVM_SHIM_BIN); then rm $(TVM_SHIM_BIN).tmp; else mv $(TVM_SHIM_BIN).tmp $(TVM_SHIM_BIN); fi
	@test $$(stat -c %s $(TVM_SHIM_BIN)) -lt 65536 || { echo "tvm-shim.bin is 64 KiB or more"; exit 1; }

# Targets that carry guestvm.bin or the shim: built (or brought up to date) first.
$(GUESTVM_BIN): guestvm ;
$(TVM_SHIM_BIN): tvm-shim ;

images: salus tellus guestvm

run_tellus: images
	$(QEMU_CMD) -device guest-loader,kernel=$(TELLUS_BIN),addr=$(HOST_ADDR) $(EXTRA_QEMU_ARGS)

# Randomized COVH/COVG/NACL sequences from every hart at once (tellus
# bootargs `fuzz seed=N iters=N`, ITER calls in all) after the normal suite,
# with Salus's cross-checks after every call; prints per-hart counts and
# `tellus: fuzz seed N: K calls on H harts (...), ...`. NCPU defaults to 4
# here; FUZZ_ARGS adds bootargs (`fuzz-harts=1`: the single-hart
# deterministic mode; `fuzz-nofence`: no tvm_fence/destroy_tvm races).
SEED ?= 1
ITER ?= 10000
FUZZ_ARGS ?=
fuzz: NCPU := $(if $(filter command line environment,$(origin NCPU)),$(NCPU),4)
fuzz: images
	$(QEMU_CMD) -device guest-loader,kernel=$(TELLUS_BIN),addr=$(HOST_ADDR),bootargs="fuzz seed=$(SEED) iters=$(ITER) salus.check $(FUZZ_ARGS)" $(EXTRA_QEMU_ARGS)

test: images linux-images linux-tvm-bundle
	QEMU=$(QEMU_BIN) ./crates/measurement/riscv-selftest/run.sh
	cargo test --workspace --exclude salus --exclude tellus --exclude guestvm

bench: images linux-images
	cargo run --release -p xtests --bin bench

fmt:
	cargo fmt --all

clippy:
	cargo clippy --release -p salus -p tellus -p guestvm -p tvm-shim --target $(TARGET)
	cargo clippy --release -p salus-vmm --all-targets --target $(VMM_TARGET)
	cargo clippy --workspace --exclude salus --exclude tellus --exclude guestvm --all-targets

clean:
	cargo clean
	rm -rf $(BUILD)

# ---- Linux host images ----
# `make linux`: the pinned Debian trixie riscv64 kernel (build/linux/Image and
# the modules tree build/linux/modules/<kver>/); `make kmod`: drivers/salus-tsm
# built against that kernel's Debian headers (build/linux/kmod/salus-tsm.ko);
# `make rootfs`: the initramfs build/linux/initramfs.cpio.gz (busybox,
# dropbear, the device modules, salus-tsm.ko, guestvm.bin, salus-vmm when
# build/linux/salus-vmm exists; root's password is "root",
# build/linux/ssh/id_ed25519 logs in too). Pins live in
# scripts/linux/versions.env; `make linux-pin` moves them to the archive's
# current versions; downloads are cached in $SALUS_CACHE/debs (default
# ~/.cache/salus/debs) and build/linux/debs.lock says what was used. See
# scripts/linux/README.md.
# LINUX: a kernel build tree (its arch/riscv/boot/Image) or an Image file;
# INITRD (default ROOTFS, default the initramfs above): the host's initrd.
LINUX_BUILD := $(BUILD)/linux
LINUX_SCRIPTS := scripts/linux
LINUX_DEFAULT_IMAGE := $(LINUX_BUILD)/Image
LINUX_DEFAULT_INITRD := $(LINUX_BUILD)/initramfs.cpio.gz
LINUX ?=
ROOTFS ?= $(LINUX_DEFAULT_INITRD)
INITRD ?= $(ROOTFS)
LINUX_IMAGE := $(if $(strip $(LINUX)),$(shell if [ -d "$(LINUX)" ]; then \
	echo "$(LINUX)/arch/riscv/boot/Image"; else echo "$(LINUX)"; fi),$(LINUX_DEFAULT_IMAGE))
LINUX_INITRD := $(INITRD)
LINUX_ENV = LINUX_BUILD=$(LINUX_BUILD) QEMU_BIN=$(QEMU_BIN) LINUX_IMAGE=$(LINUX_IMAGE) \
	LINUX_INITRD=$(LINUX_INITRD) NCPU=$(NCPU) MEM_SIZE=$(MEM_SIZE)

KMOD_SRC := drivers/salus-tsm
KMOD_KO := $(LINUX_BUILD)/kmod/salus-tsm.ko
# The VMM (a static riscv64 Linux program): packaged when it is there.
SALUS_VMM_BIN := $(LINUX_BUILD)/salus-vmm

linux: $(LINUX_DEFAULT_IMAGE)
kmod: $(KMOD_KO)
rootfs: $(LINUX_DEFAULT_INITRD)
linux-images: $(LINUX_IMAGE) $(LINUX_INITRD)

$(LINUX_DEFAULT_IMAGE): $(LINUX_SCRIPTS)/build-kernel.sh $(LINUX_SCRIPTS)/debs.sh $(LINUX_SCRIPTS)/versions.env
	LINUX_BUILD=$(LINUX_BUILD) $(LINUX_SCRIPTS)/build-kernel.sh

# The module follows its sources and the kernel (headers of the same upload).
$(KMOD_KO): $(shell find $(KMOD_SRC) -type f 2>/dev/null) $(LINUX_DEFAULT_IMAGE) \
		$(LINUX_SCRIPTS)/build-kmod.sh $(LINUX_SCRIPTS)/debs.sh $(LINUX_SCRIPTS)/versions.env
	LINUX_BUILD=$(LINUX_BUILD) $(LINUX_SCRIPTS)/build-kmod.sh

$(LINUX_DEFAULT_INITRD): $(LINUX_DEFAULT_IMAGE) $(KMOD_KO) $(GUESTVM_BIN) $(SALUS_VMM_BIN) \
		$(LINUX_SCRIPTS)/build-rootfs.sh $(KMOD_SRC)/tests/hostile.c \
		$(LINUX_SCRIPTS)/mkinitramfs.py $(LINUX_SCRIPTS)/init $(LINUX_SCRIPTS)/udhcpc.script \
		$(LINUX_SCRIPTS)/salus-load.c \
		$(LINUX_SCRIPTS)/debs.sh $(LINUX_SCRIPTS)/versions.env
	LINUX_BUILD=$(LINUX_BUILD) SALUS_TSM_KO=$(KMOD_KO) GUESTVM_BIN=$(GUESTVM_BIN) \
		SALUS_VMM=$(SALUS_VMM_BIN) $(LINUX_SCRIPTS)/build-rootfs.sh

# salus-vmm: the userspace VMM the Linux host runs TVMs with (through the
# salus-tsm.ko driver's /dev/salus-tsm; docs/salus-vmm.md). A static riscv64
# Linux binary, linked by Debian's cross gcc (.cargo/config.toml), stripped.
VMM_BIN := $(LINUX_BUILD)/salus-vmm

# Rebuilt when its sources (or the crates it uses) change.
VMM_SRCS := $(shell find salus-vmm crates/cove-abi crates/measurement crates/sbi-abi crates/tvm-bundle crates/uart16550 \
	-name '*.rs' -o -name Cargo.toml 2>/dev/null) guestvm/src/protocol.rs Cargo.lock .cargo/config.toml
vmm: $(VMM_BIN)

$(VMM_BIN): $(VMM_SRCS) | setup
	cargo build --release -p salus-vmm --target $(VMM_TARGET)
	@mkdir -p $(LINUX_BUILD)
	riscv64-linux-gnu-strip -o $@ target/$(VMM_TARGET)/release/salus-vmm

# Rewrite scripts/linux/versions.env from the archive (review, then commit).
linux-pin:
	LINUX_BUILD=$(LINUX_BUILD) $(LINUX_SCRIPTS)/debs.sh pin

# Linux on bare QEMU (no Salus): the check (boot, nproc, DHCP, SSH, disks),
# the boot-time baseline (salus.bench), and an interactive boot.
linux-check-bare: linux-images
	$(LINUX_ENV) $(LINUX_SCRIPTS)/boot-bare.sh

linux-bench-bare: linux-images
	$(LINUX_ENV) $(LINUX_SCRIPTS)/boot-bare.sh --bench

linux-run-bare: linux-images
	$(LINUX_ENV) $(LINUX_SCRIPTS)/boot-bare.sh --run

# ---- Linux as the host VM under Salus ----
# run_linux: the kernel (LINUX=, default the Debian one) with INITRD= (default
# our initramfs; INITRD= empty boots the bare kernel, which panics at init),
# the RISC-V IOMMU, a virtio-net NIC on restricted user networking with SSH
# on 127.0.0.1:$(SSH_PORT) (root:root) and a 64 MiB virtio-blk scratch disk.
# run_buildroot: BUILDROOT= a Buildroot tree (output/images/rootfs.ext2 on
# NVMe as the root filesystem), else the same as run_linux.
# run_debian: DEBIAN= a dqib-style folder (image.qcow2 on NVMe + initrd).
# SALUS_ARGS: Salus's own options (-append, e.g. salus.pci=unsafe);
# LINUX_BOOTARGS: the host kernel's command line. Ctrl-A X quits QEMU.
SSH_PORT ?= 7722
INITRD_ADDR ?= 0xd0000000
LINUX_BOOTARGS ?= console=ttyS0 earlycon=sbi
SALUS_ARGS ?=
BUILDROOT ?=
DEBIAN ?=
LINUX_RUN_DISK := $(LINUX_BUILD)/run-disk.img
LINUX_NET = -device virtio-net-pci,netdev=n0,iommu_platform=on,disable-legacy=on \
	-netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$(SSH_PORT)-:22
LINUX_QEMU = $(QEMU_CMD) -device riscv-iommu-pci $(LINUX_NET) \
	$(if $(strip $(SALUS_ARGS)),-append "$(SALUS_ARGS)")
linux_loader = -device "guest-loader,kernel=$(1),addr=$(HOST_ADDR),bootargs=$(2)"
comma := ,
initrd_loader = $(if $(strip $(1)),-device "guest-loader$(comma)initrd=$(1)$(comma)addr=$(INITRD_ADDR)")

$(LINUX_RUN_DISK):
	@mkdir -p $(LINUX_BUILD)
	truncate -s 64M $@

run_linux: salus $(LINUX_IMAGE) $(if $(strip $(LINUX_INITRD)),$(LINUX_INITRD)) $(LINUX_RUN_DISK)
	@echo "run_linux: ssh -p $(SSH_PORT) root@localhost (password root); Ctrl-A X quits"
	$(LINUX_QEMU) $(call linux_loader,$(LINUX_IMAGE),$(LINUX_BOOTARGS)) \
		$(call initrd_loader,$(LINUX_INITRD)) \
		-drive file=$(LINUX_RUN_DISK),if=none,id=d0,format=raw \
		-device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on $(EXTRA_QEMU_ARGS)

ifneq ($(strip $(BUILDROOT)),)
# Buildroot's own kernel (NVMe built in) unless LINUX= says otherwise.
BUILDROOT_IMAGE := $(if $(strip $(LINUX)),$(LINUX_IMAGE),$(BUILDROOT)/output/images/Image)
run_buildroot: salus
	@test -f $(BUILDROOT)/output/images/rootfs.ext2 || { echo "no $(BUILDROOT)/output/images/rootfs.ext2"; exit 1; }
	@echo "run_buildroot: ssh -p $(SSH_PORT) root@localhost (password root); Ctrl-A X quits"
	$(LINUX_QEMU) $(call linux_loader,$(BUILDROOT_IMAGE),$(LINUX_BOOTARGS) root=/dev/nvme0n1 rw) \
		-drive file=$(BUILDROOT)/output/images/rootfs.ext2,if=none,id=d0,format=raw \
		-device nvme,serial=salus0,drive=d0 $(EXTRA_QEMU_ARGS)
else
run_buildroot: run_linux
endif

run_debian: salus $(LINUX_IMAGE)
	@test -n "$(DEBIAN)" -a -f "$(DEBIAN)/image.qcow2" -a -f "$(DEBIAN)/initrd" || \
		{ echo "run_debian: set DEBIAN= to a dqib-style folder (image.qcow2, initrd, optionally kernel)"; exit 1; }
	@echo "run_debian: ssh -p $(SSH_PORT) root@localhost; Ctrl-A X quits"
	$(LINUX_QEMU) $(call linux_loader,$(if $(wildcard $(DEBIAN)/kernel),$(DEBIAN)/kernel,$(LINUX_IMAGE)),$(LINUX_BOOTARGS) root=LABEL=rootfs) \
		$(call initrd_loader,$(DEBIAN)/initrd) \
		-drive file=$(DEBIAN)/image.qcow2,if=none,id=d0 \
		-device nvme,serial=salus0,drive=d0 $(EXTRA_QEMU_ARGS)

# ---- Linux as a confidential VM (TVM) under tellus ----
# run_linux_tvm: tellus (bootargs `linux-tvm`) builds a 2-vCPU TVM from the
# bundle (the Debian kernel, a tiny busybox initramfs, the TVM's device
# tree; scripts/linux-tvm/build-bundle.py), which QEMU's guest-loader puts
# at LINUX_TVM_BUNDLE_ADDR as the host's initrd; the measured tvm-shim
# enters the kernel. docs/linux-tvm.md.
LINUX_TVM_BUILD := $(BUILD)/linux-tvm
LINUX_TVM_BUNDLE := $(LINUX_TVM_BUILD)/bundle.bin
LINUX_TVM_BUNDLE_ADDR ?= 0xd0000000
LINUX_TVM_SCRIPTS := scripts/linux-tvm

$(LINUX_TVM_BUNDLE): $(LINUX_DEFAULT_IMAGE) $(TVM_SHIM_BIN) $(LINUX_TVM_SCRIPTS)/build-bundle.py $(LINUX_TVM_SCRIPTS)/tvm.dts \
		$(LINUX_TVM_SCRIPTS)/init $(LINUX_SCRIPTS)/mkinitramfs.py $(LINUX_SCRIPTS)/versions.env
	python3 $(LINUX_TVM_SCRIPTS)/build-bundle.py --image $(LINUX_DEFAULT_IMAGE) --shim $(TVM_SHIM_BIN) \
		--busybox-deb $$(LINUX_BUILD=$(LINUX_BUILD) $(LINUX_SCRIPTS)/debs.sh fetch busybox-static) \
		--out-dir $(LINUX_TVM_BUILD)

linux-tvm-bundle: $(LINUX_TVM_BUNDLE)

# The same TVM with `salus.shell` on its command line: /init gives a shell
# on the emulated UART (console input through Salus's console) instead of
# the test steps.
LINUX_TVM_SHELL_BUNDLE := $(LINUX_TVM_BUILD)/shell/bundle.bin
$(LINUX_TVM_SHELL_BUNDLE): $(LINUX_TVM_BUNDLE)
	python3 $(LINUX_TVM_SCRIPTS)/build-bundle.py --image $(LINUX_DEFAULT_IMAGE) --shim $(TVM_SHIM_BIN) \
		--busybox-deb $$(LINUX_BUILD=$(LINUX_BUILD) $(LINUX_SCRIPTS)/debs.sh fetch busybox-static) \
		--out-dir $(LINUX_TVM_BUILD)/shell --bootargs-extra salus.shell

run_linux_tvm_shell: NCPU := 2
run_linux_tvm_shell: MEM_SIZE := 2048
run_linux_tvm_shell: images $(LINUX_TVM_SHELL_BUNDLE)
	$(QEMU_CMD) -device guest-loader,kernel=$(TELLUS_BIN),addr=$(HOST_ADDR),bootargs="linux-tvm" \
		-device guest-loader,initrd=$(LINUX_TVM_SHELL_BUNDLE),addr=$(LINUX_TVM_BUNDLE_ADDR) $(EXTRA_QEMU_ARGS)

run_linux_tvm: NCPU := 2
run_linux_tvm: MEM_SIZE := 2048
run_linux_tvm: images $(LINUX_TVM_BUNDLE)
	$(QEMU_CMD) -device guest-loader,kernel=$(TELLUS_BIN),addr=$(HOST_ADDR),bootargs="linux-tvm" \
		-device guest-loader,initrd=$(LINUX_TVM_BUNDLE),addr=$(LINUX_TVM_BUNDLE_ADDR) $(EXTRA_QEMU_ARGS)
