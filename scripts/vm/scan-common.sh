# The end of scan-v1 and scan-v2: run scan, audit, plan and tree, send them.
cgmig scan -o /tmp/snap.json 2>/tmp/scan.err || fail "scan: $(cat /tmp/scan.err)"
cgmig audit --format json --fail-on never -o /tmp/audit.json || fail audit
cgmig plan --fail-on never --format json -o /tmp/plan.json || fail plan
cgmig tree > /tmp/tree.txt || fail tree
for f in snap audit plan; do section $f /tmp/$f.json; done
section tree /tmp/tree.txt
finish
