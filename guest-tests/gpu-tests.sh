# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Whole-VM tests of the display (--gpu 2d), sourced by vm-tests.sh (whose
# vm_boot, fact, pass, fail and skip they use). One boot of the GPU guest
# (guest-init.sh's action gpu: the generic kernel's virtio-gpu driver and
# its /dev/fb0) answers:
#   gpu-bound    the driver took the device and gave a 1024x768, 32-bit
#                framebuffer, with no error from DRM in the guest's log
#   gpu-2d       the picture the guest drew (drm-draw, through KMS) is on husk's
#                --screenshot-on-exit PNG, colour for colour (png-probe)
#   gpu-vnc-picture  a VNC client (vnc-probe, --display vnc) sees that
#                picture too
#   gpu-vnc-key  a key it sends reaches the guest's virtio-input keyboard
#                (/dev/input/event*, read by guest-init.sh's gpu_keys)
# A second boot, with --gpu virgl (virglrenderer on Mesa's llvmpipe in the
# test host, which has no GPU), answers:
#   gpu-virgl    the driver took the 3D device (its "features: +virgl"),
#                and the same picture, whose resources now live in
#                virglrenderer, is on husk's screenshot (read back from it)
# A third boot, of a guest with its own Mesa (assets/gpu-gl, built by the
# runner when kmscube and libgl1-mesa-dri are installed), answers:
#   gpu-virgl-gl the guest's Mesa (virtio_gpu_dri.so, "virgl" its GL
#                renderer) draws with OpenGL ES through the device:
#                kmscube's cube on its grey background is on husk's
#                screenshot, the grey in the corners and not in the middle;
#                its frame rate (the first husk_gl_frames frames) goes to the log

GPU_TESTS=(gpu-bound gpu-2d gpu-vnc-picture gpu-vnc-key gpu-virgl gpu-virgl-gl)
GPU_VNC=127.0.0.1:5900
KEY_A=30 # what the keysym 'a' (0x61) is in Linux's key codes

# The points png-probe reads, and the colour the guest drew at each:
# the top half red on the left and green on the right, the bottom blue.
GPU_PROBES=("0,0" "511,383" "512,0" "1023,383" "0,384" "1023,767")
GPU_WANT="1024x768 0,0 ff0000 511,383 ff0000 512,0 00ff00 1023,383 00ff00 0,384 0000ff 1023,767 0000ff"

test_gpu() {
	local shot=$LOGDIR/gpu-2d.png got vnc=() vnc_skip="" seen=""
	rm -f "$shot"
	# A husk without libvncserver says so while parsing its options.
	if "${HUSK_CMD[@]}" run --kernel /nonexistent --gpu 2d --display "vnc=$GPU_VNC" 2>&1 |
		grep -q 'built without libvncserver'; then
		vnc_skip="husk was built without libvncserver"
	else
		vnc=(--display "vnc=$GPU_VNC")
	fi
	# No cursor blinking over the picture from the framebuffer console.
	VM_CMDLINE_EXTRA="vt.global_cursor_default=0" \
		vm_start gpu-2d gpu gpu --gpu 2d --screenshot-on-exit "$shot" --timings "${vnc[@]}"
	# Once drawn, the guest leaves the picture up (DIRTYFB returns before
	# the device has the pixels), so give it a moment. Then SIGTERM: husk
	# stops the VM (143) and writes the screenshot.
	vm_wait_for '^HUSK-GPU-SHOWN' && sleep 2
	if [[ -z $vnc_skip ]]; then
		# The test host's busybox init leaves loopback down.
		ip link set lo up 2>/dev/null || true
		# The picture as a VNC client sees it; then the key 'a', pressed and released.
		seen=$("$ASSETS/gpu/vnc-probe" -k 0x61 "${GPU_VNC%:*}" "${GPU_VNC##*:}" "${GPU_PROBES[@]}" 2>&1) ||
			seen="vnc-probe failed: $seen"
		[[ $(fact vnc_keyboard) == none ]] || TIMEOUT=30 vm_wait_for '^HUSK-FACT vnc_key=' || true
	fi
	kill -TERM "$VM_PID" 2>/dev/null || true
	vm_wait
	info "gpu-2d: $(grep -h '^husk: gpu:' "$VM_LOG.err" || echo 'husk reported no GPU counts')"
	if [[ $(fact gpu_bound) != 1 ]]; then
		fail gpu-bound "virtio-gpu's driver bound $(fact gpu_bound) devices, expected 1" "$VM_LOG"
	elif [[ "$(fact fb_size) $(fact fb_bpp) $(fact fb_stride)" != "1024,768 32 4096" ]]; then
		fail gpu-bound "framebuffer $(fact fb_size), $(fact fb_bpp) bits, stride $(fact fb_stride); expected 1024,768, 32, 4096" "$VM_LOG"
	elif [[ $(fact gpu_problems) != 0 ]]; then
		fail gpu-bound "$(fact gpu_problems) DRM errors in the guest's log" "$VM_LOG"
	else
		pass gpu-bound
	fi
	if [[ $VM_RC != 143 || $(fact gpu_drawn) != yes ]]; then
		fail gpu-2d "the guest did not draw (drawn: $(fact gpu_drawn)), or husk exited $VM_RC, not 143 after SIGTERM" "$VM_LOG"
	elif [[ ! -s $shot ]]; then
		fail gpu-2d "husk wrote no screenshot" "$VM_LOG"
	elif ! got=$("$ASSETS/gpu/png-probe" "$shot" "${GPU_PROBES[@]}" 2>&1); then
		fail gpu-2d "png-probe: $got" "$VM_LOG"
	elif got=$(tr '\n' ' ' <<<"$got") && [[ ${got% } != "$GPU_WANT" ]]; then
		fail gpu-2d "the screenshot shows '${got% }', expected '$GPU_WANT' (the guest reads back $(fact fb_first_pixel) at 0,0)" "$VM_LOG"
	else
		pass gpu-2d
	fi
	check_vnc "$vnc_skip" "$seen"
}

check_vnc() {
	local why=$1 seen
	seen=$(tr '\n' ' ' <<<"$2")
	seen=${seen% }
	if [[ -n $why ]]; then
		skip gpu-vnc-picture "$why"
		skip gpu-vnc-key "$why"
		return 0
	fi
	if [[ $seen != "$GPU_WANT" ]]; then
		fail gpu-vnc-picture "the VNC client saw '$seen', expected '$GPU_WANT'" "$VM_LOG"
	else
		pass gpu-vnc-picture
	fi
	if [[ $(fact vnc_keyboard) == none ]]; then
		skip gpu-vnc-key "the guest has no husk virtio keyboard (no virtio_input or evdev module?)"
	elif [[ $(fact vnc_key) != "$KEY_A" ]]; then
		fail gpu-vnc-key "the guest read key '$(fact vnc_key)' from $(fact vnc_keyboard), expected $KEY_A (KEY_A)" "$VM_LOG"
	else
		pass gpu-vnc-key
	fi
}

# The screenshot at $1 against the picture; empty when it matches, else why not.
picture_problem() {
	local shot=$1 got
	if [[ ! -s $shot ]]; then
		echo "husk wrote no screenshot"
	elif ! got=$("$ASSETS/gpu/png-probe" "$shot" "${GPU_PROBES[@]}" 2>&1); then
		echo "png-probe: $got"
	elif got=$(tr '\n' ' ' <<<"$got") && [[ ${got% } != "$GPU_WANT" ]]; then
		echo "the screenshot shows '${got% }', expected '$GPU_WANT'"
	fi
}

test_gpu_virgl() {
	local out
	out=$("${HUSK_CMD[@]}" run --kernel /nonexistent --gpu virgl 2>&1 || true)
	if grep -q 'built without virglrenderer' <<<"$out"; then
		skip gpu-virgl "husk was built without virglrenderer"
		skip gpu-virgl-gl "husk was built without virglrenderer"
		return 0
	fi
	want gpu-virgl && test_gpu_virgl_2d
	want gpu-virgl-gl && test_gpu_virgl_gl
	return 0
}

# The picture of gpu-2d, through the renderer.
test_gpu_virgl_2d() {
	local shot=$LOGDIR/gpu-virgl.png why
	rm -f "$shot"
	VM_CMDLINE_EXTRA="vt.global_cursor_default=0" \
		vm_start gpu-virgl gpu gpu --gpu virgl --screenshot-on-exit "$shot" --timings
	vm_wait_for '^HUSK-GPU-SHOWN' && sleep 2
	kill -TERM "$VM_PID" 2>/dev/null || true
	vm_wait
	info "gpu-virgl: $(grep -h '^husk: gpu:' "$VM_LOG.err" | tr '\n' ' ' || echo 'husk reported no GPU counts')"
	if grep -q 'virglrenderer did not start' "$VM_LOG.err"; then
		skip gpu-virgl "virglrenderer did not start in the test host: $(grep -m1 'virglrenderer' "$VM_LOG.err")"
	elif [[ $(fact gpu_features) != *+virgl* ]]; then
		fail gpu-virgl "the guest's driver did not take 3D: '$(fact gpu_features)'" "$VM_LOG"
	elif [[ $VM_RC != 143 || $(fact gpu_drawn) != yes ]]; then
		fail gpu-virgl "the guest did not draw (drawn: $(fact gpu_drawn)), or husk exited $VM_RC, not 143 after SIGTERM" "$VM_LOG"
	elif why=$(picture_problem "$shot") && [[ -n $why ]]; then
		fail gpu-virgl "$why" "$VM_LOG"
	else
		pass gpu-virgl
	fi
}

# kmscube's background: glClearColor(0.5, 0.5, 0.5), one way or the other of rounding.
is_grey() {
	[[ $1 == 7f7f7f || $1 == 808080 ]]
}

test_gpu_virgl_gl() {
	local shot=$LOGDIR/gpu-virgl-gl.png got corner far middle
	if [[ ! -r $ASSETS/gpu-gl/initrd.cpio ]]; then
		skip gpu-virgl-gl "no 3D guest image in the assets (the runner builds it with kmscube and libgl1-mesa-dri installed)"
		return 0
	fi
	rm -f "$shot"
	VM_INITRD=$ASSETS/gpu-gl/initrd.cpio VM_CMDLINE_EXTRA="vt.global_cursor_default=0" \
		vm_start gpu-virgl-gl gpu-gl gpu-gl --gpu virgl --memory 1G --screenshot-on-exit "$shot" --timings
	TIMEOUT=$((TIMEOUT * 3)) vm_wait_for '^HUSK-GPU-SHOWN' && sleep 2
	kill -TERM "$VM_PID" 2>/dev/null || true
	vm_wait
	info "gpu-virgl-gl: kmscube on $(fact gl_renderer): $(fact gl_rate); $(grep -h '^husk: gpu:' "$VM_LOG.err" | tr '\n' ' ')"
	if grep -q 'virglrenderer did not start' "$VM_LOG.err"; then
		skip gpu-virgl-gl "virglrenderer did not start in the test host: $(grep -m1 'virglrenderer' "$VM_LOG.err")"
		return 0
	elif [[ $(fact gl_renderer) != *virgl* ]]; then
		fail gpu-virgl-gl "the guest's GL renderer is '$(fact gl_renderer)', not virgl" "$VM_LOG"
		return 0
	elif [[ $VM_RC != 143 || ! -s $shot ]]; then
		fail gpu-virgl-gl "husk exited $VM_RC, not 143 after SIGTERM, or wrote no screenshot" "$VM_LOG"
		return 0
	elif ! got=$("$ASSETS/gpu/png-probe" "$shot" 0,0 1023,767 512,384 2>&1); then
		fail gpu-virgl-gl "png-probe: $got" "$VM_LOG"
		return 0
	fi
	corner=$(sed -n 's/^0,0 //p' <<<"$got")
	far=$(sed -n 's/^1023,767 //p' <<<"$got")
	middle=$(sed -n 's/^512,384 //p' <<<"$got")
	if ! is_grey "$corner" || ! is_grey "$far" || is_grey "$middle"; then
		fail gpu-virgl-gl "the screenshot shows $corner and $far in the corners, $middle in the middle; expected kmscube's grey around its cube" "$VM_LOG"
	else
		pass gpu-virgl-gl
	fi
}

run_gpu_tests() {
	if [[ ! -r $ASSETS/gpu/initrd.cpio.gz ]]; then
		local t
		for t in "${GPU_TESTS[@]}"; do skip "$t" "no GPU guest image in the assets"; done
		return 0
	fi
	if want gpu-bound gpu-2d gpu-vnc-picture gpu-vnc-key; then
		test_gpu
	fi
	if want gpu-virgl gpu-virgl-gl; then
		test_gpu_virgl
	fi
}
