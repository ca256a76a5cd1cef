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

.PHONY: help setup salus tellus guestvm run_tellus test test-unit test-qemu bench fmt clippy clean

help:
	@echo "make run_tellus   build Salus + tellus and run the tellus suite in QEMU"
	@echo "make test         host unit tests + QEMU integration tests"
	@echo "make bench        instruction-count benchmarks under -icount"
	@echo "make salus|tellus|guestvm   build one image into $(BUILD)/"
	@echo "make setup        install the Rust target and QEMU >= 9.2 (idempotent)"
	@echo "vars: QEMU=$(QEMU) NCPU=$(NCPU) MEM_SIZE=$(MEM_SIZE) MACHINE=$(MACHINE) CPU=$(CPU) EXTRA_QEMU_ARGS=$(EXTRA_QEMU_ARGS)"

setup:
	@QEMU_BIN="$(QEMU_BIN)" ./scripts/setup.sh

$(BUILD):
	@mkdir -p $(BUILD)

salus: setup $(BUILD)
	cargo build --release -p salus --target $(TARGET)
	cp $(RELDIR)/salus $(SALUS_ELF)

tellus: setup $(BUILD)
	cargo build --release -p tellus --target $(TARGET)
	cp $(RELDIR)/tellus $(BUILD)/tellus.elf
	$(OBJCOPY) -O binary $(BUILD)/tellus.elf $(TELLUS_BIN)

guestvm: setup $(BUILD)
	cargo build --release -p guestvm --target $(TARGET)
	cp $(RELDIR)/guestvm $(BUILD)/guestvm.elf
	$(OBJCOPY) -O binary $(BUILD)/guestvm.elf $(GUESTVM_BIN)

images: salus tellus guestvm

run_tellus: images
	$(QEMU_CMD) -device guest-loader,kernel=$(TELLUS_BIN),addr=$(HOST_ADDR) $(EXTRA_QEMU_ARGS)

test: images
	cargo test --workspace --exclude salus --exclude tellus --exclude guestvm

bench: images
	cargo run --release -p xtests --bin bench

fmt:
	cargo fmt --all

clippy:
	cargo clippy --release -p salus -p tellus -p guestvm --target $(TARGET)
	cargo clippy --workspace --exclude salus --exclude tellus --exclude guestvm --all-targets

clean:
	cargo clean
	rm -rf $(BUILD)
