# Kickstart tokenizer for the testlinux installer (busybox awk).
#
# Usage: awk -v OUT=/tmp/ks -f ksparse.awk ks.cfg
# Writes:
#   OUT/cmds        one command per line, its words separated by \037
#                   (quotes removed, shlex-like); sections appear as a line
#                   "%post<US>N" or "%packages" etc.
#   OUT/post.N      body of the N-th %post section
#   OUT/post.N.args the %post header words, separated by \037
#   OUT/errors      parse errors (the script then exits 1)

function tokenize(s,    n, i, len, c, tok, q, intok) {
    n = 0; tok = ""; q = ""; intok = 0
    len = length(s)
    for (i = 1; i <= len; i++) {
        c = substr(s, i, 1)
        if (q != "") {
            if (c == q) {
                q = ""
            } else if (c == "\\" && q == "\"" && i < len &&
                       index("\"\\$`", substr(s, i + 1, 1)) > 0) {
                i++
                tok = tok substr(s, i, 1)
            } else {
                tok = tok c
            }
            continue
        }
        if (c == "\"" || c == "'") { q = c; intok = 1; continue }
        if (c == " " || c == "\t") {
            if (intok) { T[++n] = tok; tok = ""; intok = 0 }
            continue
        }
        if (c == "#" && !intok) break
        if (c == "\\" && i < len) { i++; tok = tok substr(s, i, 1); intok = 1; continue }
        tok = tok c
        intok = 1
    }
    if (q != "") return -1
    if (intok) T[++n] = tok
    return n
}

function joined(n,    i, out) {
    out = T[1]
    for (i = 2; i <= n; i++) out = out US T[i]
    return out
}

function error(msg) {
    printf "line %d: %s\n", NR, msg >> (OUT "/errors")
    err = 1
}

BEGIN {
    US = sprintf("%c", 31)
    section = ""; npost = 0; err = 0
    cmds = OUT "/cmds"
    printf "" > cmds
}

{
    sub(/\r$/, "")
    line = $0
    if (section != "") {
        if (line ~ /^[ \t]*%end([ \t].*)?$/) {
            if (section == "post") close(postfile)
            section = ""
            next
        }
        if (section == "post") print line > postfile
        next
    }
    n = tokenize(line)
    if (n < 0) { error("unterminated quote"); next }
    if (n == 0) next
    c = T[1]
    if (c ~ /^%/) {
        if (c == "%post") {
            npost++
            postfile = OUT "/post." npost
            printf "" > postfile
            print joined(n) > (OUT "/post." npost ".args")
            close(OUT "/post." npost ".args")
            print "%post" US npost > cmds
            section = "post"
        } else if (c == "%pre" || c == "%pre-install" || c == "%packages" ||
                   c == "%addon" || c == "%anaconda" || c == "%onerror" ||
                   c == "%traceback") {
            print c > cmds
            section = "skip"
        } else if (c == "%include" || c == "%ksappend") {
            print joined(n) > cmds
        } else if (c == "%end") {
            error("%end outside a section")
        } else {
            error("unknown section " c)
        }
        next
    }
    print joined(n) > cmds
}

END {
    if (section != "") error("section not closed by %end")
    close(cmds)
    exit err
}
