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
