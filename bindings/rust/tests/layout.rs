//! The Rust mirrors in `evsendfile::sys` have the sizes, alignments, field
//! offsets and constant values the C compiler gives the header.
#![cfg(evsendfile_layout_probed)]

mod common;

use std::mem::{align_of, offset_of, size_of};

use common::c;
use evsendfile::sys;

#[test]
fn sf_region_t_matches_c() {
    assert_eq!(size_of::<sys::sf_region_t>(), c::SIZEOF_sf_region_t);
    assert_eq!(align_of::<sys::sf_region_t>(), c::ALIGNOF_sf_region_t);
    assert_eq!(offset_of!(sys::sf_region_t, fd), c::OFFSETOF_sf_region_t_fd);
    assert_eq!(offset_of!(sys::sf_region_t, path), c::OFFSETOF_sf_region_t_path);
    assert_eq!(offset_of!(sys::sf_region_t, offset), c::OFFSETOF_sf_region_t_offset);
    assert_eq!(offset_of!(sys::sf_region_t, count), c::OFFSETOF_sf_region_t_count);
}

#[test]
fn sf_options_t_matches_c() {
    assert_eq!(size_of::<sys::sf_options_t>(), c::SIZEOF_sf_options_t);
    assert_eq!(align_of::<sys::sf_options_t>(), c::ALIGNOF_sf_options_t);
    assert_eq!(offset_of!(sys::sf_options_t, struct_size), c::OFFSETOF_sf_options_t_struct_size);
    assert_eq!(offset_of!(sys::sf_options_t, head), c::OFFSETOF_sf_options_t_head);
    assert_eq!(offset_of!(sys::sf_options_t, head_count), c::OFFSETOF_sf_options_t_head_count);
    assert_eq!(offset_of!(sys::sf_options_t, tail), c::OFFSETOF_sf_options_t_tail);
    assert_eq!(offset_of!(sys::sf_options_t, tail_count), c::OFFSETOF_sf_options_t_tail_count);
    assert_eq!(offset_of!(sys::sf_options_t, max_chunk), c::OFFSETOF_sf_options_t_max_chunk);
    assert_eq!(offset_of!(sys::sf_options_t, idle_timeout_ms), c::OFFSETOF_sf_options_t_idle_timeout_ms);
    assert_eq!(offset_of!(sys::sf_options_t, flags), c::OFFSETOF_sf_options_t_flags);
    assert_eq!(offset_of!(sys::sf_options_t, file_size), c::OFFSETOF_sf_options_t_file_size);
}

#[test]
fn helper_types_match_c() {
    assert_eq!(size_of::<sys::iovec>(), c::SIZEOF_iovec);
    assert_eq!(offset_of!(sys::iovec, iov_base), c::OFFSETOF_iovec_iov_base);
    assert_eq!(offset_of!(sys::iovec, iov_len), c::OFFSETOF_iovec_iov_len);
    assert_eq!(size_of::<sys::timeval>(), c::SIZEOF_timeval);
    assert_eq!(offset_of!(sys::timeval, tv_sec), c::OFFSETOF_timeval_tv_sec);
    assert_eq!(offset_of!(sys::timeval, tv_usec), c::OFFSETOF_timeval_tv_usec);
    assert_eq!(size_of::<sys::sf_done_cb>(), c::SIZEOF_sf_done_cb);
}

#[test]
fn constants_match_c() {
    let pairs: [(&str, i128, i128); 25] = [
        ("SF_VERSION_MAJOR", sys::SF_VERSION_MAJOR as i128, c::SF_VERSION_MAJOR),
        ("SF_VERSION_MINOR", sys::SF_VERSION_MINOR as i128, c::SF_VERSION_MINOR),
        ("SF_VERSION_PATCH", sys::SF_VERSION_PATCH as i128, c::SF_VERSION_PATCH),
        ("SF_ETRUNCATED", sys::SF_ETRUNCATED as i128, c::SF_ETRUNCATED),
        ("SF_ETIMEDOUT", sys::SF_ETIMEDOUT as i128, c::SF_ETIMEDOUT),
        ("SF_EBLOCKING", sys::SF_EBLOCKING as i128, c::SF_EBLOCKING),
        ("SF_ENOKTLS", sys::SF_ENOKTLS as i128, c::SF_ENOKTLS),
        ("SF_COUNT_TO_EOF", sys::SF_COUNT_TO_EOF as i128, c::SF_COUNT_TO_EOF),
        ("SF_NO_SENDFILE", sys::SF_NO_SENDFILE as i128, c::SF_NO_SENDFILE),
        ("SF_TLS", sys::SF_TLS as i128, c::SF_TLS),
        ("SF_NO_CORK", sys::SF_NO_CORK as i128, c::SF_NO_CORK),
        ("SF_TRUSTED", sys::SF_TRUSTED as i128, c::SF_TRUSTED),
        ("SF_FORCE_SENDFILE", sys::SF_FORCE_SENDFILE as i128, c::SF_FORCE_SENDFILE),
        ("SF_KNOWN_SIZE", sys::SF_KNOWN_SIZE as i128, c::SF_KNOWN_SIZE),
        ("SF_DISK_INLINE", sys::SF_DISK_INLINE as i128, c::SF_DISK_INLINE),
        ("SF_SHUT_WR", sys::SF_SHUT_WR as i128, c::SF_SHUT_WR),
        ("SF_DEFAULT_MAX_CHUNK", sys::SF_DEFAULT_MAX_CHUNK as i128, c::SF_DEFAULT_MAX_CHUNK),
        ("SF_SMALL_BODY_MAX", sys::SF_SMALL_BODY_MAX as i128, c::SF_SMALL_BODY_MAX),
        ("SF_COPY_BUFFER_SIZE", sys::SF_COPY_BUFFER_SIZE as i128, c::SF_COPY_BUFFER_SIZE),
        ("SF_STEP_DONE", sys::SF_STEP_DONE as i128, c::SF_STEP_DONE),
        ("SF_STEP_WRITE", sys::SF_STEP_WRITE as i128, c::SF_STEP_WRITE),
        ("SF_STEP_READ", sys::SF_STEP_READ as i128, c::SF_STEP_READ),
        ("SF_STEP_YIELD", sys::SF_STEP_YIELD as i128, c::SF_STEP_YIELD),
        ("SF_STEP_SOURCE", sys::SF_STEP_SOURCE as i128, c::SF_STEP_SOURCE),
        ("sf_version()", unsafe_version() as i128, (c::SF_VERSION_MAJOR << 16) | (c::SF_VERSION_MINOR << 8) | c::SF_VERSION_PATCH),
    ];
    for (name, rust, c_value) in pairs {
        assert_eq!(rust, c_value, "{name}");
    }
}

fn unsafe_version() -> u32 {
    // SAFETY: sf_version has no preconditions.
    unsafe { sys::sf_version() }
}

#[test]
fn options_init_fills_the_struct_size_c_expects() {
    let mut o = std::mem::MaybeUninit::<sys::sf_options_t>::zeroed();
    // SAFETY: o is writable memory of the right size; sf_options_init fills every field.
    let o = unsafe {
        sys::sf_options_init(o.as_mut_ptr());
        o.assume_init()
    };
    assert_eq!(o.struct_size, c::SIZEOF_sf_options_t);
    assert_eq!(o.max_chunk as i128, c::SF_DEFAULT_MAX_CHUNK);
}

#[test]
fn every_declared_function_links() {
    // Taking each address makes the linker resolve every name declared in sys.
    let addresses = [
        sys::sf_version as *const () as usize,
        sys::sf_version_text as *const () as usize,
        sys::sf_err_text as *const () as usize,
        sys::sf_err_name as *const () as usize,
        sys::sf_options_init as *const () as usize,
        sys::sf_can_use as *const () as usize,
        sys::sf_peer_flags as *const () as usize,
        sys::sf_send_async as *const () as usize,
        sys::sf_cancel as *const () as usize,
        sys::sf_transfer_body_sent as *const () as usize,
        sys::sf_job_new as *const () as usize,
        sys::sf_job_step as *const () as usize,
        sys::sf_job_body_sent as *const () as usize,
        sys::sf_job_source_fd as *const () as usize,
        sys::sf_job_wait_fd as *const () as usize,
        sys::sf_job_free as *const () as usize,
        sys::sf_worker_new as *const () as usize,
        sys::sf_worker_submit as *const () as usize,
        sys::sf_worker_cancel as *const () as usize,
        sys::sf_worker_free as *const () as usize,
        sys::event_base_new as *const () as usize,
        sys::event_base_free as *const () as usize,
        sys::event_base_get_method as *const () as usize,
        sys::event_base_loop as *const () as usize,
        sys::event_base_dispatch as *const () as usize,
        sys::event_base_loopbreak as *const () as usize,
        sys::event_base_once as *const () as usize,
    ];
    assert!(addresses.iter().all(|&a| a != 0));
}
