//! Catalog apps on the lab's stand-ins (lab/stand-ins/): what the images of a recipe are
//! replaced with on a device, so the real recipe deploys there.

use homelabd::catalog::Recipe;

use super::lab;

/// Tags the app's stand-in as its web service's image, and the plain stand-in as the others'
/// with the stand-in's script as the entrypoint, so a service's own `command` (MariaDB's and
/// PostgreSQL's options) becomes arguments it ignores instead of a program to run.
pub fn tag_images(device: &str, r: &Recipe) {
    // A fixed script; the image name arrives as its argument.
    const AS_ENTRYPOINT: &str = "c=$(docker create homelab-lab/app-stub:1) && \
        docker commit -c 'ENTRYPOINT [\"/bin/sh\",\"/bin/stub\"]' -c 'CMD []' \"$c\" \"$1\" >/dev/null; \
        s=$?; docker rm \"$c\" >/dev/null; exit $s";
    // An app that uses the device's shared database does not start its own: that service's
    // image (`mariadb:10.11` for Nextcloud) may be the shared instance's own, the real server
    // the lab loads, which must not be replaced by a stand-in.
    let pooled = homelabd::pool::can_pool(r).is_ok();
    for (name, service) in &r.compose.services.0 {
        if pooled
            && r.manifest
                .database
                .as_ref()
                .is_some_and(|d| d.service == *name)
        {
            continue;
        }
        let image = service.as_ref().and_then(|s| s.image.clone()).unwrap();
        let ok = if *name == r.manifest.web.service {
            let source = format!("homelab-lab/standin-{}:1", r.manifest.slug);
            lab::exec_ok(device, &["docker", "tag", &source, &image])
        } else {
            lab::exec_ok(device, &["sh", "-c", AS_ENTRYPOINT, "tag", &image])
        };
        assert!(
            ok,
            "stand in for {image} on {device} (run lab/lab up to load the stand-ins)"
        );
    }
}

/// The lab's stub serving its pages from the app's volume (mounted at /www): the volume's
/// `health` file is its health check, so a restore of data without it fails the check.
pub fn volume_app_recipe(data: &std::path::Path, slug: &str, port: u16) {
    let dir = data.join("recipes").join(slug);
    std::fs::create_dir_all(&dir).expect("recipe folder");
    std::fs::write(
        dir.join("manifest.yaml"),
        format!(
            "name: {slug}\nslug: {slug}\nversion: \"1.0\"\ncategory: Test\n\
             description: A lab app with data.\nwebsite: https://example.org\n\
             requirements: {{ram_min_mb: 64, ram_recommended_mb: 128, storage_min_gb: 1, \
             storage_recommended_gb: 1, cpu_min_cores: 1, cpu_recommended_cores: 1}}\n\
             architectures: [amd64, arm64]\n\
             web: {{service: web, port: 8080, path: /}}\n\
             health: {{path: /health, status: 200, timeout: 10}}\n\
             data_volumes: [data]\n\
             settings:\n  - {{name: HTTP_PORT, label: Which port to use, kind: port, default: \"{port}\"}}\n"
        ),
    )
    .expect("manifest");
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: example/{slug}:1\n    restart: unless-stopped\n    \
             ports:\n      - \"${{HTTP_PORT}}:8080\"\n    volumes:\n      - data:/www\nvolumes:\n  data:\n"
        ),
    )
    .expect("compose");
}

/// Runs a fixed script in a throwaway container of the stub that mounts the app's data
/// volume at /d, on `device`.
pub fn in_app_volume(device: &str, slug: &str, script: &str) -> String {
    lab::exec(
        device,
        &[
            "docker",
            "run",
            "--rm",
            "-v",
            &format!("homelab-{slug}_data:/d"),
            "--entrypoint",
            "/bin/busybox",
            "homelab-lab/app-stub:1",
            "sh",
            "-c",
            script,
        ],
    )
}

/// Every entry of the app's data volume on `device`: path, type, mode, owner, size and
/// content hash, sorted. What "byte for byte, with modes and owners" means in the tests.
pub fn volume_listing(device: &str, slug: &str) -> String {
    let out = in_app_volume(
        device,
        slug,
        "cd /d && find . | sort | while read -r f; do \
           if [ -L \"$f\" ]; then echo \"$f link $(readlink \"$f\")\"; \
           elif [ -f \"$f\" ]; then echo \"$f file $(stat -c '%a %u %g %s' \"$f\") $(md5sum < \"$f\" | cut -d' ' -f1)\"; \
           else echo \"$f dir $(stat -c '%a %u %g' \"$f\")\"; fi; done",
    );
    assert!(out.lines().count() > 300, "the listing is complete: {out}");
    out
}

/// Fills the app's data volume on `device` with many files: sizes from empty to 3 MB, modes,
/// owners, nested folders, a link.
pub fn fill_volume(device: &str, slug: &str) {
    in_app_volume(
        device,
        slug,
        "cd /d && mkdir -p a/b/c empty && i=0; while [ $i -lt 300 ]; do \
           head -c $((i * i * 37 % 200000)) /dev/urandom > a/f$i; i=$((i+1)); done; \
         head -c 3000000 /dev/urandom > a/b/c/big; : > a/zero; \
         chmod 600 a/f1; chmod 755 a/f2; chmod 1777 empty; chown 1000:1000 a/f3; \
         chown 33:33 a/b; ln -s ../a/f4 a/b/link",
    );
}
