#!/bin/sh
# SPDX-License-Identifier: MIT
#
# /init of the whole-VM tests' Linux guest (busybox sh). It reports what the
# guest sees as "HUSK-FACT key=value" lines, then does what the kernel
# command line asks: the kernel hands unknown key=value parameters to init
# as environment variables, so "husk_action=reboot" arrives as
# $husk_action. Actions: poweroff (default), reboot, panic, hang.
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sys /sys
# The image has a /dev/console node; devtmpfs gives the rest of /dev.
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
exec </dev/console >/dev/console 2>&1

while read -r m; do
	insmod "/modules/$m" || echo "HUSK-GUEST-ERROR insmod $m failed"
done </modules/order

echo "HUSK-GUEST-UP"

fact() {
	echo "HUSK-FACT $1=$2"
}

fact kernel "$(uname -r)"
fact uptime "$(cut -d' ' -f1 /proc/uptime)"
fact cpus "$(grep -c ^processor /proc/cpuinfo)"
fact nproc "$(nproc)"
fact memtotal_kb "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
# "Memory: 479504K/523768K available (...)": the second number is all the
# RAM the kernel manages, the best match for what the VMM was asked for.
fact mem_managed_kb "$(dmesg | sed -n 's|.*Memory: [0-9]*K/\([0-9]*\)K available.*|\1|p')"
fact e820_ram_above_4g "$(dmesg | grep 'BIOS-e820:.*usable' | grep -vc 'mem 0x00000000[0-9a-f]\{8\}-')"
fact acpi_problems "$(dmesg | grep -cE 'ACPI.*(Error|Warning|BIOS)')"
# The timer the guest programs: lapic-deadline when it may use the
# TSC-deadline mode.
fact clockevent "$(cat /sys/devices/system/clockevents/clockevent0/current_device 2>/dev/null)"
# arm64: the PL061 GPIO controller of the power button, bound by its AMBA driver.
bound=0
for dev in /sys/bus/amba/drivers/pl061_gpio/*.pl061; do
	[ -e "$dev" ] && bound=$((bound + 1))
done
fact pl061_bound "$bound"
# Devices the pvpanic driver bound: the VMM hears of a panic only then.
bound=0
for dev in /sys/bus/platform/drivers/pvpanic-mmio/*:*; do
	[ -e "$dev" ] && bound=$((bound + 1))
done
fact pvpanic "$bound"
# virtio devices, when the VMM gave any: disks, entropy, the PCI bus.
block_facts() {
	# shellcheck disable=SC3043 # busybox sh has local
	local dev name high=0 start
	for dev in /sys/block/vd*; do
		[ -e "$dev" ] || continue
		name=${dev##*/}
		fact "size_$name" "$(cat "$dev/size")"
		fact "ro_$name" "$(cat "$dev/ro")"
		fact "serial_$name" "$(cat "$dev/serial" 2>/dev/null)"
		fact "queues_$name" "$(find "$dev/mq" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
	done
	if [ -e /dev/hwrng ]; then
		fact hwrng_bytes "$(dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c)"
		fact hwrng_zero_bytes "$(dd if=/dev/hwrng bs=64 count=4 2>/dev/null | tr -d '\000' | wc -c)"
		fact rng_current "$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
	fi
	fact pci_devices "$(find /sys/bus/pci/devices -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
	fact pci_problems "$(dmesg | grep -cE 'PCI: Fatal|not reserved|virtio.*(failed|error)')"
	# virtio functions whose BAR 0 the kernel kept in the 64-bit window, above 4 GiB
	for dev in /sys/bus/pci/devices/*; do
		[ "$(cat "$dev/vendor")" = 0x1af4 ] || continue
		start=$(head -n 1 "$dev/resource" | cut -d' ' -f1)
		[ $((start)) -ge $((0x100000000)) ] && high=$((high + 1))
	done
	fact pci_bars_high "$high"
}
block_facts

# The lines behind the counts, for whoever reads a failing test's log.
dmesg | grep -E 'ACPI.*(Error|Warning|BIOS)|BIOS-e820|Memory: ' | sed 's/^/HUSK-DMESG /'

# The network tests' guest (husk_action=net), set up by more parameters:
#   husk_net_ip=dhcp|ADDR/PREFIX   how eth0 gets its address
#   husk_net_fetch=HOST:PORT       GET /page.txt and /big.bin from there
#   husk_net_dns=NAME              look NAME up through the DNS server
#   husk_net_ping=ADDR             ping ADDR
#   husk_net_udp=PORT              print what arrives on UDP PORT (needs
#                                  /net/bin/nc, netcat-openbsd, in the image)
#   husk_net_fwd_httpd=PORT        also serve index.html on PORT with fwd-httpd
#   husk_net_link=1                print "HUSK-LINK 0|1" as eth0's carrier
#                                  changes, while it serves
#   husk_net_rebind=1              first unbind eth0's driver and bind it
#                                  again: the device is reset and restarted
# Then it serves HTTP on port 80 (/index.html, /big.bin, and
# /cgi-bin/done, which ends the wait), says HUSK-NET-READY and waits for
# the host's checks to finish before it powers off.
# eth0's driver lets go of the device and takes it again (fact rebind: ok,
# or what went wrong).
net_rebind() {
	# shellcheck disable=SC3043 # busybox sh has local
	local dev drv=/sys/bus/virtio/drivers/virtio_net i=0
	dev=$(basename "$(readlink /sys/class/net/eth0/device)")
	ip link set eth0 up
	if ! echo "$dev" >$drv/unbind || [ -e /sys/class/net/eth0 ] || ! echo "$dev" >$drv/bind; then
		fact rebind "could not unbind and bind $dev"
		return 0
	fi
	while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if [ -e /sys/class/net/eth0 ]; then fact rebind ok; else fact rebind "no eth0 after binding $dev"; fi
}

net_action() {
	# shellcheck disable=SC3043 # busybox sh has local
	local i
	ip link set lo up
	i=0
	while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -z "${husk_net_rebind:-}" ] || net_rebind
	fact eth0_mtu "$(cat /sys/class/net/eth0/mtu 2>/dev/null)"
	fact eth0_mac "$(cat /sys/class/net/eth0/address 2>/dev/null)"
	case ${husk_net_ip:-dhcp} in
	dhcp)
		udhcpc -i eth0 -s /usr/share/udhcpc/default.script -f -q -n -t 5 -T 2
		;;
	*)
		ip addr add "$husk_net_ip" dev eth0
		ip link set eth0 up
		;;
	esac
	fact eth0_ip "$(ip -4 addr show dev eth0 | awk '$1 == "inet" { print $2; exit }')"
	if [ -n "${husk_net_ping:-}" ]; then
		if ping -c 3 -W 3 "$husk_net_ping" >/tmp/ping 2>&1; then
			fact ping_out ok
		else
			fact ping_out failed
			sed 's/^/HUSK-PING /' /tmp/ping
		fi
	fi
	if [ -n "${husk_net_fetch:-}" ]; then
		# No wget -T: busybox 1.35's wget crashes with it.
		if timeout 20 wget -q -O /tmp/page "http://$husk_net_fetch/page.txt" 2>/tmp/wget.err &&
			timeout 60 wget -q -O /tmp/big "http://$husk_net_fetch/big.bin" 2>>/tmp/wget.err; then
			fact http_out "$(cat /tmp/page)"
			fact http_out_big_sha "$(sha256sum /tmp/big | cut -d' ' -f1)"
		else
			fact http_out failed
			sed 's/^/HUSK-WGET /' /tmp/wget.err
		fi
	fi
	if [ -n "${husk_net_dns:-}" ]; then
		nslookup -type=a "$husk_net_dns" >/tmp/dns 2>&1
		sed 's/^/HUSK-NSLOOKUP /' /tmp/dns
		fact dns_answer "$(awk '/^Name:/ { n = 1 } n && /^Address:/ { print $2; exit }' /tmp/dns)"
	fi
	# What the host fetches through a forwarded port or the TAP device.
	mkdir -p /www/cgi-bin
	echo "husk-guest-page ${husk_test:-}" >/www/index.html
	dd if=/dev/urandom of=/www/big.bin bs=64k count=16 2>/dev/null
	fact guest_big_sha "$(sha256sum /www/big.bin | cut -d' ' -f1)"
	printf '#!/bin/sh\ntouch /tmp/net-done\nprintf "Content-Type: text/plain\\r\\n\\r\\nbye\\n"\n' >/www/cgi-bin/done
	chmod 755 /www/cgi-bin/done
	httpd -p 80 -h /www
	[ -z "${husk_net_fwd_httpd:-}" ] || /bin/fwd-httpd "$husk_net_fwd_httpd" /www/index.html &
	if [ -n "${husk_net_udp:-}" ]; then
		if [ -x /net/bin/nc ]; then
			# -k: datagrams from any peer, not only the first one's.
			/net/bin/nc -d -k -u -l "$husk_net_udp" >/tmp/udp 2>&1 &
			fact udp_listener "$husk_net_udp"
		else
			fact udp_listener none
		fi
	fi
	if [ -n "${husk_net_link:-}" ]; then
		(
			last=""
			while [ ! -e /tmp/net-done ]; do
				c=$(cat /sys/class/net/eth0/carrier 2>/dev/null)
				[ "$c" = "$last" ] || echo "HUSK-LINK $c"
				last=$c
				sleep 0.1
			done
		) &
	fi
	echo "HUSK-NET-READY"
	# The host's last request is /cgi-bin/done; give up after a while so
	# that a broken network still ends the VM.
	i=0
	while [ ! -e /tmp/net-done ] && [ $i -lt 900 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -e /tmp/net-done ] || echo "HUSK-GUEST-ERROR the host never fetched /cgi-bin/done"
	fact listen_overflows "$(awk '$1 == "TcpExt:" { if (!col) { for (i = 2; i <= NF; i++) if ($i == "ListenOverflows") col = i } else print $col }' /proc/net/netstat)"
	if [ -n "${husk_net_udp:-}" ]; then
		fact udp_in "$(head -n 1 /tmp/udp 2>/dev/null)"
		fact udp_lines_husk_udp "$(grep -c "^husk-udp " /tmp/udp 2>/dev/null)"
	fi
}

# The VNC tests' keyboard (--display vnc): the first key pressed on husk's
# virtio-input keyboard, read from its evdev node (a 24-byte input_event:
# a timeval, then type, code and value), as a fact.
gpu_keys() {
	# shellcheck disable=SC3043 # busybox sh has local
	local e dev="" ev
	for e in /sys/class/input/event*; do
		[ "$(cat "$e/device/name" 2>/dev/null)" = "husk virtio keyboard" ] && dev=/dev/input/${e##*/}
	done
	fact vnc_keyboard "${dev:-none}"
	[ -n "$dev" ] || return 0
	exec 3<"$dev"
	while ev=$(dd bs=24 count=1 <&3 2>/dev/null | od -An -v -tu2); do
		# shellcheck disable=SC2086 # the words, split
		set -- $ev
		[ $# -ge 11 ] || break
		if [ "$9" = 1 ] && [ "${11}" = 1 ]; then
			fact vnc_key "${10}"
			break
		fi
	done
	exec 3<&-
}

# The GPU tests' guest (husk_action=gpu, gpu-tests.sh): virtio-gpu's DRM
# driver and its fbdev, /dev/fb0. It reports the framebuffer and what the
# kernel said of the driver, then draws the known picture the host checks
# on husk's screenshot: the top half red on the left, green on the right;
# the bottom half blue. drm-draw paints it through KMS (a dumb buffer,
# SETCRTC, DIRTYFB): Linux 6.1's fbdev emulation keeps what write(2) puts
# in /dev/fb0 in a shadow buffer and never sends it to the device.
gpu_action() {
	# shellcheck disable=SC3043 # busybox sh has local
	local i=0 n dev out fb=/sys/class/graphics/fb0
	while [ ! -e /dev/fb0 ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	n=0
	for dev in /sys/bus/virtio/drivers/virtio_gpu/virtio[0-9]*; do
		[ -e "$dev" ] && n=$((n + 1))
	done
	fact gpu_bound "$n"
	fact fb_name "$(cat $fb/name 2>/dev/null)"
	fact fb_size "$(cat $fb/virtual_size 2>/dev/null)"
	fact fb_bpp "$(cat $fb/bits_per_pixel 2>/dev/null)"
	fact fb_stride "$(cat $fb/stride 2>/dev/null)"
	# What the driver took: "+virgl" with --gpu virgl.
	fact gpu_features "$(dmesg | grep -m1 -o 'features: .*virgl.*')"
	fact gpu_problems "$(dmesg | grep -ciE '(virtio.gpu|drm).*(error|fail|timeout|bug)')"
	dmesg | grep -iE 'virtio.gpu|drm' | sed 's/^/HUSK-DMESG /'
	[ -e /dev/fb0 ] || return 0
	# The framebuffer console would draw over the picture (its first
	# clear can come after ours): take it off the framebuffer first.
	sleep 1
	for dev in /sys/class/vtconsole/vtcon*; do
		grep -q 'frame buffer' "$dev/name" 2>/dev/null && echo 0 >"$dev/bind"
	done
	fact fbcon_bound "$(grep -l 'frame buffer' /sys/class/vtconsole/vtcon*/name 2>/dev/null |
		sed 's|/name$|/bind|' | xargs cat 2>/dev/null)"
	# It prints the mode and the first pixel as the guest reads it back.
	if out=$(drm-draw); then
		fact gpu_drawn yes
		fact gpu_mode "${out% *}"
		fact fb_first_pixel "${out#* }"
	else
		fact gpu_drawn no
	fi
}

# gpu-tests.sh's gpu-virgl-gl (husk_action=gpu-gl): the guest's own Mesa,
# staged under /gl with its loader and libraries, draws with OpenGL ES
# through the 3D device: kmscube's cube on the grey of its
# glClearColor(0.5, 0.5, 0.5). A first kmscube draws husk_gl_frames frames
# (120) and ends, which flushes its frame rate (written to a file, its
# output comes in 4 KiB blocks: about 1,900 frames of waiting otherwise);
# a second keeps drawing until the host stops husk, for the screenshot
# (an exit would hand the display back to the console).
gpu_gl_action() {
	# shellcheck disable=SC3043 # busybox sh has local
	local i=0 dev log=/tmp/kmscube.log whole='frames in [0-9.]* sec ([0-9.]* fps)$'
	while [ ! -e /dev/dri/card0 ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	fact gpu_features "$(dmesg | grep -m1 -o 'features: .*virgl.*')"
	for dev in /sys/class/vtconsole/vtcon*; do
		grep -q 'frame buffer' "$dev/name" 2>/dev/null && echo 0 >"$dev/bind"
	done
	export __EGL_VENDOR_LIBRARY_FILENAMES=/gl/share/50_mesa.json LIBGL_DRIVERS_PATH=/gl/lib/dri
	export MESA_SHADER_CACHE_DISABLE=true HOME=/tmp
	# kmscube stops at the first byte (or end) on its stdin: a FIFO open
	# for reading and writing never gives either.
	mkfifo /tmp/kmscube.in
	timeout 300 /gl/bin/kmscube -D /dev/dri/card0 -c "${husk_gl_frames:-120}" \
		<>/tmp/kmscube.in >"$log" 2>&1
	grep -v extensions "$log" | sed 's/^/HUSK-GL /'
	fact gl_renderer "$(sed -n 's/^ *renderer: *//p' "$log" | head -n 1 | tr -d '"')"
	fact gl_rate "$(sed -n "s/^Rendered \([0-9]* $whole\)/\1/p" "$log" | tail -n 1)"
	/gl/bin/kmscube -D /dev/dri/card0 <>/tmp/kmscube.in >/dev/null 2>&1 &
	# Its first frames: the shaders compile again (no cache).
	sleep 5
}

echo "HUSK-GUEST-ACTION ${husk_action:-poweroff}"
case ${husk_action:-poweroff} in
poweroff) poweroff -f ;;
reboot) reboot -f ;;
panic) echo c >/proc/sysrq-trigger ;;
hang) while :; do sleep 60; done ;;
blk-root)
	# vdb is attached read-only: every way of writing to it must fail. The
	# kernel's complaints go to its log only, not into the facts' lines.
	dmesg -n 1
	mkdir -p /ro /newroot
	mount -t ext4 -o ro /dev/vdb /ro && fact marker_vdb "$(cat /ro/marker)" && umount /ro
	if dd if=/dev/zero of=/dev/vdb bs=512 count=1 conv=notrunc 2>/dev/null; then
		fact vdb_raw_write ok
	else
		fact vdb_raw_write refused
	fi
	if mount -t ext4 -o rw /dev/vdb /ro 2>/dev/null && touch /ro/x 2>/dev/null; then
		fact vdb_fs_write ok
	else
		fact vdb_fs_write refused
	fi
	# vda is an ext4 root filesystem with its own busybox and init.
	mount -t ext4 /dev/vda /newroot && fact marker_vda "$(cat /newroot/marker)"
	umount /proc /sys /tmp /dev 2>/dev/null
	exec switch_root /newroot /init-root
	;;
blk-rw)
	# A raw disk (arm64-tests.sh): its first line as the host wrote it,
	# then a line of ours at 4 KiB, written through to the host's file.
	i=0
	while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	fact blk_read "$(head -c 512 /dev/vda 2>/dev/null | tr -d '\000' | head -n 1)"
	if echo "written by the guest ${husk_test:-}" |
		dd of=/dev/vda bs=4096 seek=1 conv=notrunc,fsync 2>/dev/null; then
		fact blk_write ok
	else
		fact blk_write failed
	fi
	poweroff -f
	;;
fs-rw)
	# A --share tagged "work" (arm64-tests.sh): read the host's file,
	# leave one of ours.
	mkdir -p /mnt
	mount -t virtiofs work /mnt && fact fs_mounted yes
	fact fs_host_file "$(cat /mnt/hostfile 2>/dev/null)"
	if echo "written by the guest ${husk_test:-}" >/mnt/guestfile && sync; then
		fact fs_write ok
	else
		fact fs_write failed
	fi
	umount /mnt
	poweroff -f
	;;
net)
	net_action
	poweroff -f
	;;
fs)
	. /fs-workout.sh
	poweroff -f
	;;
vsock)
	# vsock-tests.sh: the agent serves (husk shell wants a devpts); echo
	# one connection the host makes, then send to the host.
	mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
	husk-agent &
	vsock-echo serve "${husk_vsock_port:-1234}"
	vsock-echo send "${husk_vsock_host_port:-5678}" "${husk_vsock_bytes:-1048576}"
	poweroff -f
	;;
gpu)
	# The picture stays up until the host stops husk (gpu-tests.sh): a
	# power-off would have the driver take it down first.
	gpu_action
	gpu_keys &
	echo "HUSK-GPU-SHOWN"
	while :; do sleep 60; done
	;;
gpu-gl)
	gpu_gl_action
	echo "HUSK-GPU-SHOWN"
	while :; do sleep 60; done
	;;
agent)
	# vsock-tests.sh's mounts: only the agent, until the host powers the guest off.
	husk-agent
	echo "HUSK-GUEST-ERROR husk-agent ended"
	poweroff -f
	;;
fs-root)
	# A shared host directory as the root filesystem, with its own init.
	mkdir -p /newroot
	mount -t virtiofs rootfs /newroot && fact root_mounted yes
	umount /proc /sys /tmp /dev 2>/dev/null
	exec switch_root /newroot /init-root
	;;
*) echo "HUSK-GUEST-ERROR unknown husk_action '$husk_action'" ;;
esac
# Returning from init would panic the kernel; make any fall-through visible.
sleep 5
echo "HUSK-GUEST-ERROR action '${husk_action:-poweroff}' did not stop the VM"
poweroff -f
