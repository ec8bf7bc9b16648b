# Flatten the YAML subset of cloud-init NoCloud seed files (meta-data,
# user-data, network-config) for the testlinux first-boot agent (busybox awk,
# mawk or gawk; run it with LC_ALL=C).
#
# Usage: awk -v OUT=/tmp/dir -f cidata.awk FILE
# Writes:
#   OUT/index   one line per scalar: "<path>\t<N>", where <path> is the keys
#               and sequence indexes leading to it, joined by "/"
#               (write_files/0/path, ssh_keys/ed25519_private)
#   OUT/v.N     the scalar's value, exactly: no newline is added to plain and
#               quoted scalars; block scalars (| and >, with - and +
#               chomping) end as YAML says
# Handles block mappings and sequences (also "- key: value" items and
# sequences at their key's indentation), plain, 'single' and "double"
# quoted scalars (JSON escapes included), flow sequences of scalars, and
# comments.  Anything else (anchors, aliases, tags, flow mappings, multi-line
# quoted scalars, tabs in the indentation) is an error: the message goes to
# stderr as "line N: ..." and the exit status is 1.

function fail(msg) {
    printf "line %d: %s\n", NR, msg > "/dev/stderr"
    err = 1
    exit 1
}

function join(a, b) { return a == "" ? b : a "/" b }

function indent_of(s) { match(s, /^ */); return RLENGTH }

function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }

function emit(path, val,    f) {
    nv++
    f = OUT "/v." nv
    printf "%s", val > f
    close(f)
    printf "%s\t%d\n", path, nv > IDX
}

function hexval(h,    i, v, c) {
    v = 0
    h = tolower(h)
    for (i = 1; i <= length(h); i++) {
        c = index("0123456789abcdef", substr(h, i, 1))
        if (c == 0) fail("bad escape digits \\" h)
        v = v * 16 + c - 1
    }
    return v
}

function utf8(cp) {
    if (cp == 0) fail("\\0 in a quoted scalar")
    if (cp < 128) return sprintf("%c", cp)
    if (cp < 2048) return sprintf("%c%c", 192 + int(cp / 64), 128 + cp % 64)
    if (cp < 65536) {
        if (cp >= 55296 && cp < 57344) fail("UTF-16 surrogate escape")
        return sprintf("%c%c%c", 224 + int(cp / 4096), 128 + int(cp / 64) % 64, 128 + cp % 64)
    }
    return sprintf("%c%c%c%c", 240 + int(cp / 262144), 128 + int(cp / 4096) % 64,
                   128 + int(cp / 64) % 64, 128 + cp % 64)
}

# quoted(s): s starts with a quote; sets QV (the value) and QREST (what
# follows the closing quote)
function quoted(s,    q, i, n, c, out, e, k) {
    q = substr(s, 1, 1)
    n = length(s)
    out = ""
    for (i = 2; i <= n; i++) {
        c = substr(s, i, 1)
        if (q == "'") {
            if (c == "'") {
                if (substr(s, i + 1, 1) == "'") { out = out "'"; i++; continue }
                QV = out; QREST = substr(s, i + 1); return
            }
            out = out c
            continue
        }
        if (c == "\"") { QV = out; QREST = substr(s, i + 1); return }
        if (c != "\\") { out = out c; continue }
        i++
        e = substr(s, i, 1)
        if (e == "n") out = out "\n"
        else if (e == "t") out = out "\t"
        else if (e == "r") out = out "\r"
        else if (e == "b") out = out "\b"
        else if (e == "f") out = out "\f"
        else if (e == "\\" || e == "\"" || e == "/" || e == " ") out = out e
        else if (e == "x" || e == "u" || e == "U") {
            k = e == "x" ? 2 : (e == "u" ? 4 : 8)
            out = out utf8(hexval(substr(s, i + 1, k)))
            i += k
        } else fail("unsupported escape \\" e)
    }
    fail("quoted scalar not closed on its line")
}

# scalar(s): the value of a plain or quoted scalar (comments removed)
function scalar(s,    r, c) {
    s = trim(s)
    c = substr(s, 1, 1)
    if (c == "\"" || c == "'") {
        quoted(s)
        r = trim(QREST)
        if (r != "" && substr(r, 1, 1) != "#") fail("text after a quoted scalar")
        return QV
    }
    if (c == "&" || c == "*" || c == "!") fail("anchors, aliases and tags are not supported")
    if (c == "{" || c == "[") fail("nested flow collections are not supported")
    if (c == "@" || c == "`" || c == "%") fail("reserved indicator " c)
    sub(/[ \t]#.*$/, "", s)
    return trim(s)
}

function flow_seq(path, s,    i, n, c, q, item, k, rest) {
    s = trim(s)
    n = length(s)
    k = 0
    item = ""
    q = ""
    for (i = 2; i <= n; i++) {
        c = substr(s, i, 1)
        if (q != "") {
            item = item c
            if (c == "\\" && q == "\"") { i++; item = item substr(s, i, 1); continue }
            if (c == q) q = ""
            continue
        }
        if (c == "\"" || c == "'") { q = c; item = item c; continue }
        if (c == "[" || c == "{") fail("nested flow collections are not supported")
        if (c == "," || c == "]") {
            if (trim(item) != "") emit(path "/" k++, scalar(item))
            else if (c == ",") fail("empty item in a flow sequence")
            item = ""
            if (c == "]") {
                rest = trim(substr(s, i + 1))
                if (rest != "" && substr(rest, 1, 1) != "#") fail("text after a flow sequence")
                return
            }
            continue
        }
        item = item c
    }
    fail("flow sequence not closed on its line")
}

function value(path, v, ind,    h) {
    v = trim(v)
    h = substr(v, 1, 1)
    if (h == "|" || h == ">") {
        h = v
        sub(/[ \t]#.*$/, "", h)
        h = trim(h)
        if (h !~ /^[|>][-+]?[1-9]?$/ && h !~ /^[|>][1-9][-+]$/) fail("bad block scalar header " h)
        B_path = path
        B_parent = ind
        B_fold = substr(h, 1, 1) == ">"
        B_chomp = h ~ /-/ ? "strip" : (h ~ /\+/ ? "keep" : "clip")
        B_indent = h ~ /[1-9]/ ? ind + substr(h, match(h, /[1-9]/), 1) : 0
        B_n = 0
        inblock = 1
        return
    }
    if (h == "[") { flow_seq(path, v); return }
    if (h == "{") {
        if (v !~ /^\{[ \t]*\}[ \t]*(#.*)?$/) fail("flow mappings are not supported")
        return
    }
    emit(path, scalar(v))
}

function end_block(    i, out, last, line) {
    inblock = 0
    last = B_n
    if (B_chomp != "keep")
        while (last > 0 && B_line[last] == "") last--
    out = ""
    for (i = 1; i <= last; i++) {
        line = B_line[i]
        if (i == 1) out = line
        else if (!B_fold) out = out "\n" line
        else if (line == "") out = out "\n"
        else if (B_line[i - 1] == "") out = out line
        else out = out " " line
    }
    if (last > 0 && B_chomp != "strip") out = out "\n"
    if (B_chomp == "keep")
        for (i = last + 1; i <= B_n; i++) out = out "\n"
    emit(B_path, out)
}

# entry(text, ind): "key: value" or "key:" in the mapping on top of the stack
function entry(t, ind,    key, rest, p) {
    if (substr(t, 1, 1) == "\"" || substr(t, 1, 1) == "'") {
        quoted(t)
        key = QV
        rest = QREST
        if (rest !~ /^[ \t]*:([ \t]|$)/) fail("expected ':' after a quoted key")
        sub(/^[ \t]*:/, "", rest)
    } else {
        p = match(t, /:([ \t]|$)/)
        if (p == 0) fail("expected 'key: value'")
        key = trim(substr(t, 1, p - 1))
        rest = substr(t, p + 1)
    }
    if (key == "" || key ~ /[\/\t]/) fail("unsupported key '" key "'")
    rest = trim(rest)
    if (rest == "" || substr(rest, 1, 1) == "#") {
        P_path = join(C_path[D], key)
        P_ind = ind
        pending = 1
        return
    }
    value(join(C_path[D], key), rest, ind)
}

function push(ind, path, kind) {
    D++
    C_ind[D] = ind
    C_path[D] = path
    C_kind[D] = kind
    C_n[D] = 0
}

BEGIN {
    if (OUT == "") { print "cidata.awk: OUT is not set" > "/dev/stderr"; exit 2 }
    IDX = OUT "/index"
    printf "" > IDX
    D = 0; C_ind[0] = 0; C_path[0] = ""; C_kind[0] = "map"
    pending = 0; inblock = 0; nv = 0; err = 0
}

{
    sub(/\r$/, "")
    line = $0
    if (inblock) {
        if (line ~ /^ *$/) {
            B_line[++B_n] = (B_indent > 0 && length(line) > B_indent) ? substr(line, B_indent + 1) : ""
            next
        }
        ind = indent_of(line)
        if (B_indent == 0 && ind > B_parent) B_indent = ind
        if (B_indent > 0 && ind >= B_indent) {
            B_line[++B_n] = substr(line, B_indent + 1)
            next
        }
        end_block()
    }
    if (line ~ /^[ \t]*(#.*)?$/) next
    if (NR == 1 || !started) {
        if (line ~ /^---[ \t]*(#.*)?$/) { started = 1; next }
    }
    if (line ~ /^(---|\.\.\.)([ \t]|$)/) fail("only one YAML document is supported")
    started = 1
    if (line ~ /^ *\t/) fail("tab in the indentation")
    ind = indent_of(line)
    t = substr(line, ind + 1)
    seq = t ~ /^-([ \t]|$)/
    if (pending) {
        pending = 0
        if (ind > P_ind) push(ind, P_path, seq ? "seq" : "map")
        else if (ind == P_ind && seq) push(ind, P_path, "seq")
        else emit(P_path, "")
    }
    while (D > 0 && (C_ind[D] > ind || (C_ind[D] == ind && C_kind[D] == "seq" && !seq))) D--
    if (C_ind[D] != ind) fail("unexpected indentation")
    if (!seq) {
        if (C_kind[D] != "map") fail("expected a '- ' sequence item")
        entry(t, ind)
        next
    }
    if (C_kind[D] != "seq") fail(D == 0 ? "the document is not a mapping" : "unexpected sequence item")
    ipath = join(C_path[D], C_n[D]++)
    rest = substr(t, 2)
    match(rest, /^[ \t]*/)
    rind = ind + 1 + RLENGTH
    rest = substr(rest, RLENGTH + 1)
    if (rest == "" || substr(rest, 1, 1) == "#") {
        P_path = ipath
        P_ind = ind
        pending = 1
    } else if (rest ~ /^-([ \t]|$)/) {
        fail("nested '- - ' sequences are not supported")
    } else if (rest ~ /^("[^"]*"|'[^']*'|[^"'{\[|>&*!#][^:]*):([ \t]|$)/) {
        push(rind, ipath, "map")
        entry(rest, rind)
    } else {
        value(ipath, rest, ind)
    }
}

END {
    if (err) exit 1
    if (inblock) end_block()
    if (pending) emit(P_path, "")
    close(IDX)
}
