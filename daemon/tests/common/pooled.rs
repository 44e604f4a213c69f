//! Lab apps whose database is in a device's shared instance (PostgreSQL or MariaDB), and
//! how the tests read that database: as the app's login, row for row.

use super::lab;

/// A lab app whose database is in the shared instance of `engine` on the device, with the
/// stub's pages (and its `health` file) in its volume.
pub fn recipe(data: &std::path::Path, slug: &str, engine: &str, port: u16) {
    let dir = data.join("recipes").join(slug);
    std::fs::create_dir_all(&dir).expect("recipe file");
    std::fs::write(
        dir.join("manifest.yaml"),
        format!(
            "name: {slug}\nslug: {slug}\nversion: \"1.0\"\ncategory: Test\n\
             description: A lab app with a shared database.\nwebsite: https://example.org\n\
             requirements: {{ram_min_mb: 64, ram_recommended_mb: 128, storage_min_gb: 1, \
             storage_recommended_gb: 1, cpu_min_cores: 1, cpu_recommended_cores: 1}}\n\
             architectures: [amd64, arm64]\n\
             web: {{service: web, port: 8080, path: /}}\n\
             health: {{path: /health, status: 200, timeout: 10}}\n\
             data_volumes: [data]\n\
             database:\n  engine: {engine}\n  service: db\n  extensions: []\n  \
             env: {{host: DB_HOST, port: DB_PORT, name: DB_NAME, user: DB_USER, password: DB_PASSWORD}}\n\
             secrets:\n  - {{name: DB_PASSWORD, length: 32}}\n\
             settings:\n  - {{name: HTTP_PORT, label: Which port to use, kind: port, default: \"{port}\"}}\n"
        ),
    )
    .expect("recipe file");
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: example/{slug}:1\n    restart: unless-stopped\n    \
             environment:\n      DB_HOST: ${{DB_HOST:-db}}\n      DB_NAME: ${{DB_NAME:-app}}\n      \
             DB_USER: ${{DB_USER:-app}}\n      DB_PASSWORD: ${{DB_PASSWORD}}\n    \
             ports:\n      - \"${{HTTP_PORT}}:8080\"\n    volumes:\n      - data:/www\n  \
             db:\n    image: example/{slug}-db:1\n    profiles: [own-database]\n    \
             volumes:\n      - dbdata:/var/lib/db\nvolumes:\n  data:\n  dbdata:\n"
        ),
    )
    .expect("recipe file");
}

/// SQL in the app's database as the shared instance's superuser (PostgreSQL: acting as the
/// app's login, so what it makes is the app's).
pub fn app_sql(device: &str, engine: &str, db: &str, sql: &str) -> String {
    let out = match engine {
        "postgres" => lab::exec(
            device,
            &[
                "docker",
                "exec",
                "-u",
                "postgres",
                "homelab-postgres",
                "psql",
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
                "-c",
                &format!("SET ROLE {db}; {sql}"),
            ],
        ),
        _ => lab::exec(
            device,
            &[
                "docker",
                "exec",
                "homelab-mariadb",
                "mariadb",
                "--defaults-extra-file=/run/homelab/client.cnf",
                "-N",
                "-B",
                db,
                "-e",
                sql,
            ],
        ),
    };
    out.lines()
        .filter(|l| *l != "SET")
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rows, their id sum and a hash of every value in order: what "row for row" means here.
pub fn fingerprint(device: &str, engine: &str, db: &str) -> String {
    let sql = match engine {
        "postgres" => {
            "SELECT count(*) || ' ' || sum(id) || ' ' || md5(string_agg(v, ',' ORDER BY id)) FROM items"
        }
        _ => {
            "SELECT CONCAT(COUNT(*), ' ', SUM(id), ' ', MD5(GROUP_CONCAT(v ORDER BY id SEPARATOR ','))) FROM items"
        }
    };
    let out = app_sql(device, engine, db, sql);
    assert!(out.split(' ').count() == 3, "{out}");
    out
}
