//! The meta protocol, byte for byte: mg ms md ma mn me with their flags, as
//! tables of (bytes sent, bytes expected) over one connection to a 2-shard
//! corecache, and the same rows against memcached 1.6.18 when installed.
//! Rows where corecache deliberately differs (docs/protocol.md: the `E` flag,
//! newer than 1.6.18) carry memcached's reply too.

mod common;
use common::{Row, Server, deviation, row, run_differential};

const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";

fn get_set_rows() -> Vec<Row> {
    vec![
        row(b"mg miss\r\n", b"EN\r\n"),
        row(b"mg miss v\r\n", b"EN\r\n"),
        // A miss returns k and O, so a pipelining client can match it.
        row(b"mg miss k O1 v\r\n", b"EN kmiss O1\r\n"),
        // q hides misses of mg.
        row(b"mg miss q k\r\n", b""),
        row(b"mg miss k O1 q\r\n", b""),
        row(b"ms m 2\r\nhi\r\n", b"HD\r\n"),
        row(b"mg m v\r\n", b"VA 2\r\nhi\r\n"),
        row(b"mg m s v\r\n", b"VA 2 s2\r\nhi\r\n"),
        row(b"mg m\r\n", b"HD\r\n"),
        // q does not hide hits.
        row(b"mg m q v\r\n", b"VA 2\r\nhi\r\n"),
        // Hit before, last access, and no TTL (-1).
        row(b"mg m h l t\r\n", b"HD h1 l<n> t-1\r\n"),
        // Flags come back in request order.
        row(
            b"ms m 2 T100 F7 c k O123\r\nhi\r\n",
            b"HD c<cas> km O123\r\n",
        ),
        row(b"mg m f t v k O5 s\r\n", b"VA 2 f7 t<n> km O5 s2\r\nhi\r\n"),
        row(b"mg m c\r\n", b"HD c<n>\r\n"),
        // Compare-and-set with the CAS value from `c`.
        row(b"ms m 2 C<cas> c\r\nho\r\n", b"HD c<cas>\r\n"),
        row(b"ms m 2 C1\r\nhu\r\n", b"EX\r\n"),
        row(b"mg m v\r\n", b"VA 2\r\nho\r\n"),
        row(b"ms nope 2 C1\r\nhu\r\n", b"NF\r\n"),
        // A TTL in the past: stored, and gone.
        row(b"ms gone 1 T-1\r\nx\r\n", b"HD\r\n"),
        row(b"mg gone v\r\n", b"EN\r\n"),
        // Modes: E add, A append, P prepend, R replace, S set.
        row(b"ms mode 1 MA\r\ny\r\n", b"NS\r\n"),
        row(b"ms mode 1 MR\r\ny\r\n", b"NS\r\n"),
        row(b"ms mode 1 ME\r\ny\r\n", b"HD\r\n"),
        row(b"ms mode 1 ME\r\nz\r\n", b"NS\r\n"),
        row(b"ms mode 1 MA\r\nz\r\n", b"HD\r\n"),
        row(b"ms mode 1 MP\r\na\r\n", b"HD\r\n"),
        row(b"mg mode v\r\n", b"VA 3\r\nayz\r\n"),
        row(b"ms mode 1 MR\r\nr\r\n", b"HD\r\n"),
        row(b"ms mode 1 MS\r\ns\r\n", b"HD\r\n"),
        row(b"mg mode v\r\n", b"VA 1\r\ns\r\n"),
        // The classic commands see meta items and the other way round.
        row(b"get mode\r\n", b"VALUE mode 0 1\r\ns\r\nEND\r\n"),
        row(b"set classic 3 0 2\r\nab\r\n", b"STORED\r\n"),
        row(b"mg classic f v\r\n", b"VA 2 f3\r\nab\r\n"),
    ]
}

fn base64_rows() -> Vec<Row> {
    vec![
        // bWtleQ== is "mkey".
        row(b"ms bWtleQ== 2 b\r\nhi\r\n", b"HD\r\n"),
        row(b"mg bWtleQ== b k v\r\n", b"VA 2 kbWtleQ== b\r\nhi\r\n"),
        row(b"get mkey\r\n", b"VALUE mkey 0 2\r\nhi\r\nEND\r\n"),
        // memcached remembers on the item that its key was set in base64 and
        // answers k in base64 even to a plain-key request; corecache answers
        // in the form of the request (not listed in docs/protocol.md).
        deviation(
            b"mg mkey k v\r\n",
            b"VA 2 kmkey\r\nhi\r\n",
            b"VA 2 kbWtleQ== b\r\nhi\r\n",
        ),
        row(b"ma Y250 b N0 J41 v\r\n", b"VA 2\r\n41\r\n"),
        row(b"get cnt\r\n", b"VALUE cnt 0 2\r\n41\r\nEND\r\n"),
        row(b"md bWtleQ== b q\r\n", b""),
        row(b"get mkey\r\n", b"END\r\n"),
        row(b"me bWtleQ== b\r\n", b"EN\r\n"),
        // An invalid encoding is refused, and the data block swallowed.
        row(
            b"ms !!! 2 b\r\nhi\r\n",
            b"CLIENT_ERROR error decoding key\r\n",
        ),
        row(b"mg bWtleQ b v\r\n", b"CLIENT_ERROR error decoding key\r\n"),
        row(b"mg a b c\r\n", b"CLIENT_ERROR error decoding key\r\n"),
    ]
}

fn delete_arith_debug_rows() -> Vec<Row> {
    vec![
        row(b"ms d 1\r\nx\r\n", b"HD\r\n"),
        // q hides HD of md, not NF.
        row(b"md d q\r\n", b""),
        row(b"md d q\r\n", b"NF\r\n"),
        row(b"md d\r\n", b"NF\r\n"),
        row(b"ms d 1\r\nx\r\n", b"HD\r\n"),
        row(b"md d C1\r\n", b"EX\r\n"),
        row(b"md d k O9\r\n", b"HD kd O9\r\n"),
        // Invalidation: the item stays, stale; the first fetch wins the
        // right to recache (W), later ones see that it was sent (Z).
        row(b"ms i 1\r\nv\r\n", b"HD\r\n"),
        row(b"md i I T30\r\n", b"HD\r\n"),
        row(b"mg i v c\r\n", b"VA 1 c<n> X W\r\nv\r\n"),
        row(b"mg i v c\r\n", b"VA 1 c<n> Z X\r\nv\r\n"),
        row(b"ms i 1 I\r\nw\r\n", b"HD\r\n"),
        row(b"mg i v\r\n", b"VA 1\r\nw\r\n"),
        // Vivify on miss: an empty item is created and this client wins.
        row(b"mg new N30 v c t\r\n", b"VA 0 c<n> t<n> W\r\n\r\n"),
        row(b"mg new N30 v c t\r\n", b"VA 0 c<n> t<n> Z\r\n\r\n"),
        row(b"ms new 3\r\nabc\r\n", b"HD\r\n"),
        row(b"mg new v\r\n", b"VA 3\r\nabc\r\n"),
        // Recache: a TTL below R's wins a recache.
        row(b"ms r 1 T20\r\nv\r\n", b"HD\r\n"),
        row(b"mg r R30 v\r\n", b"VA 1 W\r\nv\r\n"),
        row(b"mg r v\r\n", b"VA 1 Z\r\nv\r\n"),
        row(b"ma cnt\r\n", b"NF\r\n"),
        row(b"ma cnt N0 J10 v\r\n", b"VA 2\r\n10\r\n"),
        row(b"ma cnt v\r\n", b"VA 2\r\n11\r\n"),
        row(b"ma cnt MD D5 v\r\n", b"VA 1\r\n6\r\n"),
        // q hides the reply of an update, not of a vivify.
        row(b"ma cnt q\r\n", b""),
        row(b"ma cnt v t c\r\n", b"VA 1 t-1 c<n>\r\n8\r\n"),
        row(b"ma cnt C1\r\n", b"EX\r\n"),
        row(b"ma cnt M+ D18446744073709551615 v\r\n", b"VA 1\r\n7\r\n"),
        row(b"ma cnt M- D100 v\r\n", b"VA 1\r\n0\r\n"),
        row(b"ma cnt MI\r\n", b"HD\r\n"),
        row(b"ma viv N0 J5 v q\r\n", b"VA 1\r\n5\r\n"),
        row(b"ma viv N0 J5 v q\r\n", b""),
        row(b"ms t 2\r\nhi\r\n", b"HD\r\n"),
        row(
            b"ma t\r\n",
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        row(b"ms c 1\r\n1\r\n", b"HD\r\n"),
        // Sizes and classes are the store's own.
        row(
            b"me c\r\n",
            b"ME c exp=-1 la=<n> cas=<n> fetch=no cls=<n> size=<n>\r\n",
        ),
        row(b"me nope\r\n", b"EN\r\n"),
    ]
}

fn error_rows() -> Vec<Row> {
    vec![
        row(b"mg\r\n", b"ERROR\r\n"),
        row(b"md\r\n", b"ERROR\r\n"),
        row(b"ms x\r\n", BAD_FORMAT),
        row(b"ms x abc\r\nv\r\n", [BAD_FORMAT, b"ERROR\r\n"].concat()),
        // Flag errors come after the length: the block is swallowed.
        row(b"ms x 1 !\r\nv\r\n", b"CLIENT_ERROR invalid flag\r\n"),
        row(b"ms x 1 c c\r\nv\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
        // The pre-1.6 S flag is not a flag any more.
        row(b"ms x 1 S3\r\nv\r\n", b"CLIENT_ERROR invalid flag\r\n"),
        row(
            b"ms x 1 MZ\r\nr\r\n",
            b"CLIENT_ERROR invalid mode for ms M token\r\n",
        ),
        row(
            b"ms x 1 MEE\r\nr\r\n",
            b"CLIENT_ERROR incorrect length for M token\r\n",
        ),
        row(
            b"ma x MX\r\n",
            b"CLIENT_ERROR invalid mode for ma M token\r\n",
        ),
        row(
            b"ma x MI Dx\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        row(
            b"ma x D-1\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        row(
            b"ma x J-1\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        row(
            format!("mg x O{}\r\n", "a".repeat(40)),
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        row(format!("mg {} v\r\n", "k".repeat(251)), BAD_FORMAT),
        // Too large: refused, swallowed, old item unlinked, connection usable.
        row(b"ms big 1\r\nx\r\n", b"HD\r\n"),
        row(
            [
                &b"ms big 2000000 T0\r\n"[..],
                &vec![b'v'; 2_000_000],
                b"\r\n",
            ]
            .concat(),
            b"SERVER_ERROR object too large for cache\r\n",
        ),
        row(b"mg big v\r\n", b"EN\r\n"),
        // The E flag (set the CAS value) is newer than 1.6.18.
        deviation(
            b"ms e 1 E999\r\nv\r\n",
            b"HD\r\n",
            b"CLIENT_ERROR invalid flag\r\n",
        ),
        deviation(b"mg e c v\r\n", b"VA 1 c999\r\nv\r\n", b"EN\r\n"),
    ]
}

/// Quiet mode: a batch of q requests ended by mn shows only what matters.
fn pipelined_rows() -> Vec<Row> {
    vec![
        row(
            b"ms qa 1 q\r\na\r\nms qb 1 q\r\nb\r\nmg qa q v k\r\nmg qmiss q v k\r\nmg qb q v k O2\r\nmd qmiss q\r\nmd qa q\r\nmn\r\n",
            b"VA 1 kqa\r\na\r\nVA 1 kqb O2\r\nb\r\nNF\r\nMN\r\n",
        ),
        row(
            b"mg qa v\r\nmg qb v\r\nmn\r\nma qn N0 J1 v\r\nmn extra tokens\r\n",
            b"EN\r\nVA 1\r\nb\r\nMN\r\nVA 1\r\n1\r\nMN\r\n",
        ),
        // Classic and meta mixed in one write.
        row(
            b"set mix 0 0 1\r\n1\r\nma mix v\r\nincr mix 1\r\nmg mix v\r\nget mix\r\n",
            b"STORED\r\nVA 1\r\n2\r\n3\r\nVA 1\r\n3\r\nVALUE mix 0 1\r\n3\r\nEND\r\n",
        ),
    ]
}

#[test]
fn mg_ms_flags_and_modes() {
    let server = Server::start(&["-t", "2"]);
    run_differential("mg_ms_flags_and_modes", &server, &get_set_rows());
}

#[test]
fn base64_keys() {
    let server = Server::start(&["-t", "2"]);
    run_differential("base64_keys", &server, &base64_rows());
}

#[test]
fn md_ma_me_invalidation_vivify_recache() {
    let server = Server::start(&["-t", "2"]);
    run_differential(
        "md_ma_me_invalidation_vivify_recache",
        &server,
        &delete_arith_debug_rows(),
    );
}

#[test]
fn meta_errors_keep_the_connection_usable() {
    let server = Server::start(&["-t", "2"]);
    run_differential(
        "meta_errors_keep_the_connection_usable",
        &server,
        &error_rows(),
    );
}

#[test]
fn quiet_mode_and_pipelines() {
    let server = Server::start(&["-t", "2"]);
    run_differential("quiet_mode_and_pipelines", &server, &pipelined_rows());
}

/// `md <key> x` (newer memcached): drop the value, keep the item, so a later
/// `mg` hits an empty value; flags come from `F` (0 without it).
#[test]
fn md_x_keeps_the_item_with_an_empty_value() {
    let server = Server::start(&["-t", "2"]);
    common::run_table(
        server.addr,
        common::Target::Corecache,
        &[
            row(b"ms x 3 F5\r\nabc\r\n", b"HD\r\n"),
            row(b"md x x\r\n", b"HD\r\n"),
            row(b"mg x v s\r\n", b"VA 0 s0\r\n\r\n"),
        ],
    );
}
