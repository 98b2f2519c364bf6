// Generator run by regenerate.sh (not part of any build): real bindgen on
// libpg_query's headers, limited to their own declarations (no libc items, which
// differ between platforms) and without layout tests (sizes of one platform).
// Writes src/pg_query_bindings.rs and src/headers.txt.

const HEADERS: [&str; 3] = ["pg_query.h", "pg_query_scan_tokens.h", "postgres_deparse.h"];

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, out) = (&args[1], std::path::Path::new(&args[2]));
    let mut b = bindgen::Builder::default()
        .header(format!("{dir}/pg_query.h"))
        .layout_tests(false);
    for h in HEADERS {
        b = b.allowlist_file(format!("{dir}/{}", h.replace('.', "\\.")));
    }
    b.generate()
        .expect("bindgen failed")
        .write_to_file(out.join("pg_query_bindings.rs"))
        .expect("writing the bindings");
    let mut record = String::new();
    for h in HEADERS {
        let text = std::fs::read(format!("{dir}/{h}")).expect("reading a header");
        record.push_str(&format!("{h} {:016x}\n", fnv1a64(&text)));
    }
    std::fs::write(out.join("headers.txt"), record).expect("writing headers.txt");
}
