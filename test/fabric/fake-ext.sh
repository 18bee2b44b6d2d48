#!/bin/sh
# Fake extension handler for waagent-ts tests (extensions.md §13.2). Usage: fake.sh <install|enable|disable|update|uninstall>
set -f
OP="$1"
NARGS=$#
ARGS="$*"
H=$(cd "$(dirname "$0")/.." && pwd -P)
L=$(dirname "$H")
LOG="$L/fake-ext-record.log"

jesc() { printf '%s' "$1" | tr '\n\r\t' '   ' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

SEQ="${ConfigSequenceNumber:-}"
XN="${ConfigExtensionName:-}"
if [ -z "$SEQ" ]; then
  if [ -n "$XN" ]; then
    SEQ=$(ls "$H/config" 2>/dev/null | sed -n "s/^$XN\.\([0-9][0-9]*\)\.settings$/\1/p" | sort -n | tail -n 1)
  else
    SEQ=$(ls "$H/config" 2>/dev/null | sed -n 's/^\([0-9][0-9]*\)\.settings$/\1/p' | sort -n | tail -n 1)
  fi
fi
if [ -n "$XN" ]; then PREFIX="$XN.$SEQ"; else PREFIX="$SEQ"; fi
SETTINGS="$H/config/$PREFIX.settings"

FAKE=""
if [ -f "$SETTINGS" ]; then
  FAKE=$(sed -n 's/.*"fake"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$SETTINGS" | head -n 1)
fi
# d KEY: the value of <op>.KEY=, else of KEY=, else empty
d() {
  _v=""; _found=""
  for _t in $FAKE; do case $_t in "$OP.$1="*) _v=${_t#*=}; _found=1;; esac; done
  if [ -z "$_found" ]; then for _t in $FAKE; do case $_t in "$1="*) _v=${_t#*=};; esac; done; fi
  printf '%s' "$_v"
}

# ---- the record -------------------------------------------------------------------------------------------------
st=$(cat /proc/$$/stat 2>/dev/null)
rest=${st##*) }
set -- $rest
PPID_="$2"; PGID="$3"; SID="$4"
fds=""
set +f
for f in /proc/$$/fd/*; do
  n=${f##*/}
  t=$(readlink "$f" 2>/dev/null)
  fds="$fds\"$n\":\"$(jesc "$t")\","
done
set -f
envj=$(env | while IFS= read -r line; do
  case $line in *=*) ;; *) continue;; esac
  k=${line%%=*}; v=${line#*=}
  case $k in ''|*[!A-Za-z0-9_]*) continue;; esac
  printf '"%s":"%s",' "$k" "$(jesc "$v")"
done)
sx=false; sm=""
if [ -f "$SETTINGS" ]; then sx=true; sm=$(stat -c %Y "$SETTINGS" 2>/dev/null); fi
hx=false; [ -f "$H/HandlerEnvironment.json" ] && hx=true
printf '{"time":"%s","epoch":%s,"op":"%s","argc":%s,"args":"%s","pwd":"%s","uid":"%s","umask":"%s","pid":%s,"ppid":"%s","pgid":"%s","sid":"%s","handlerDir":"%s","seq":"%s","extName":"%s","settingsFile":"%s","settingsExists":%s,"settingsMtime":"%s","handlerEnvExists":%s,"fake":"%s","fds":{%s},"env":{%s}}\n' \
  "$(now)" "$(date +%s)" "$(jesc "$OP")" "$NARGS" "$(jesc "$ARGS")" "$(jesc "$(pwd)")" "$(id -u)" "$(umask)" "$$" "$PPID_" "$PGID" "$SID" \
  "$(jesc "$H")" "$SEQ" "$(jesc "$XN")" "$(jesc "$SETTINGS")" "$sx" "$sm" "$hx" "$(jesc "$FAKE")" "${fds%,}" "${envj%,}" >> "$LOG"

event() { printf '{"time":"%s","op":"%s","event":"%s",%s}\n' "$(now)" "$OP" "$1" "$2" >> "$LOG"; }

# ---- directives ---------------------------------------------------------------------------------------------------
if [ "$(d skipifseen)" = 1 ] && [ -f "$H/mrseq" ] && [ -n "$SEQ" ]; then
  m=$(cat "$H/mrseq")
  if [ "$SEQ" -le "$m" ] 2>/dev/null; then event skipped "\"mrseq\":\"$m\""; exit 0; fi
fi
if [ "$(d mrseq)" = 1 ] && [ -n "$SEQ" ]; then printf '%s' "$SEQ" > "$H/mrseq"; fi

emit() { # emit N LABEL: N bytes, first line "LABEL-FIRST", last line "LABEL-LAST"
  _n=$1
  _first="$2-FIRST"; _last="$2-LAST"
  _fill=$((_n - ${#_first} - ${#_last} - 2))
  printf '%s\n' "$_first"
  if [ "$_fill" -gt 0 ]; then head -c "$_fill" /dev/zero | tr '\0' 'x'; fi
  printf '\n%s' "$_last"
}
o=$(d out); [ -n "$o" ] && emit "$o" FAKE-OUT
e=$(d err); [ -n "$e" ] && emit "$e" FAKE-ERR >&2

case $OP in
  install) OPN=Install;; enable) OPN=Enable;; disable) OPN=Disable;; update) OPN=Update;; uninstall) OPN=Uninstall;; *) OPN="$OP";;
esac
status_doc() { # status code message substatus-json
  printf '[{"version":"1.0","timestampUTC":"%s","status":{"name":"fake","operation":"%s","status":"%s","code":%s,"formattedMessage":{"lang":"en-US","message":"%s"},"substatus":%s}}]' \
    "$(now)" "$OPN" "$1" "$2" "$3" "$4"
}
sub() { printf '[{"name":"sub","status":"%s","code":0,"formattedMessage":{"lang":"en-US","message":"substatus of %s"}}]' "$1" "$OP"; }
kind=$(d status)
if [ -n "$kind" ] && [ "$kind" != none ]; then
  mkdir -p "$H/status"
  f="$H/status/$PREFIX.status"
  code=$(d code)
  if [ -z "$code" ]; then if [ "$kind" = error ]; then code=1; else code=0; fi; fi
  case $kind in
    transitioning|success|error|warning|Success) status_doc "$kind" "$code" "fake $OP $kind" "$(sub "$kind")" > "$f.tmp";;
    invalidjson) printf '[{"version":"1.0","status":{"status":"success",' > "$f.tmp";;
    notarray) printf '{"version":"1.0","timestampUTC":"%s","status":{"status":"success","code":0}}' "$(now)" > "$f.tmp";;
    emptyarray) printf '[]' > "$f.tmp";;
    nostatuskey) printf '[{"version":"1.0","timestampUTC":"%s","notstatus":{"status":"success"}}]' "$(now)" > "$f.tmp";;
    badsubstatus) status_doc success 0 "bad substatus" '"oops"' > "$f.tmp";;
    stringcode) printf '[{"version":"1.0","timestampUTC":"%s","status":{"status":"success","code":"abc","formattedMessage":{"lang":"en-US","message":"string code"}}}]' "$(now)" > "$f.tmp";;
    nonutf8) printf '[{"version":"1.0","timestampUTC":"%s","status":{"status":"success","code":0,"formattedMessage":{"lang":"en-US","message":"bad \377\376 bytes"}}}]' "$(now)" > "$f.tmp";;
    huge) status_doc success 0 "$(head -c 140000 /dev/zero | tr '\0' 'x')" "$(sub success)" > "$f.tmp";;
    hugenull) printf '[{"version":"1.0","timestampUTC":"%s","status":{"status":"success","code":0,"formattedMessage":null,"substatus":[{"name":"%s","status":"success","code":0,"formattedMessage":null}]}}]' "$(now)" "$(head -c 140000 /dev/zero | tr '\0' 'n')" > "$f.tmp";;
    *) printf 'unknown status kind %s' "$kind" > "$f.tmp";;
  esac
  mv -f "$f.tmp" "$f"
fi

hb=$(d heartbeat); age=$(d heartbeatage)
if [ -n "$age" ] && [ -z "$hb" ]; then hb=ready; fi
if [ "$hb" = invalid ]; then printf 'not json {' > "$H/heartbeat.log"
elif [ -n "$hb" ]; then
  printf '[{"version": 1.0, "heartbeat": {"status": "%s", "code": 0, "formattedMessage": {"lang": "en-US", "message": "hb"}}}]' "$hb" > "$H/heartbeat.log"
fi
if [ -n "$age" ]; then touch -d "@$(( $(date +%s) - age ))" "$H/heartbeat.log"; fi

n=$(d tld)
if [ -n "$n" ]; then
  mkdir -p "$L/events"; i=0
  while [ "$i" -lt "$n" ]; do printf '{"fake":%s}' "$i" > "$L/events/fake-$$-$i.tld"; i=$((i + 1)); done
fi
n=$(d etp)
if [ -n "$n" ] && [ -f "$H/HandlerEnvironment.json" ]; then
  ef=$(sed -n 's/.*"eventsFolder"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$H/HandlerEnvironment.json" | head -n 1)
  if [ -n "$ef" ]; then
    mkdir -p "$ef"; i=0
    while [ "$i" -lt "$n" ]; do printf '{"fake":%s}' "$i" > "$ef/$(date +%s)$$$i.json"; i=$((i + 1)); done
  fi
fi

if [ "$(d decrypt)" = 1 ]; then
  tp=$(sed -n 's/.*"protectedSettingsCertThumbprint"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$SETTINGS" | head -n 1)
  ps=$(sed -n 's/.*"protectedSettings"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$SETTINGS" | head -n 1)
  ok=false
  if plain=$(printf '%s' "$ps" | base64 -d | openssl cms -inform DER -decrypt -recip "$L/$tp.crt" -inkey "$L/$tp.prv" 2>/dev/null) ||
     plain=$(printf '%s' "$ps" | base64 -d | openssl smime -inform DER -decrypt -recip "$L/$tp.crt" -inkey "$L/$tp.prv" 2>/dev/null); then ok=true; fi
  hash=$(printf '%s' "$plain" | sha256sum | cut -d' ' -f1)
  event decrypt "\"ok\":$ok,\"sha256\":\"$hash\",\"thumbprint\":\"$(jesc "$tp")\""
fi

s=$(d daemon)
if [ -n "$s" ]; then sleep "$s" & echo $! > "$L/fake-ext-daemon.pid"; event daemon "\"pid\":$!"; fi
s=$(d escape)
if [ -n "$s" ]; then
  setsid sh -c 'echo $$ > "$1"; exec sleep "$2"' sh "$L/fake-ext-escape.pid" "$s" </dev/null >/dev/null 2>&1 &
  sleep "$s"
fi
s=$(d child)
if [ -n "$s" ]; then
  sh -c 'trap "" TERM; echo $$ > "$1"; exec sleep "$2"' sh "$L/fake-ext-child.pid" "$s" &
  sleep "$s"
fi
if [ "$(d restartagent)" = 1 ]; then systemctl restart waagent.service 2>/dev/null || systemctl restart walinuxagent.service; fi
s=$(d sleep); [ -n "$s" ] && sleep "$s"
x=$(d exit)
event exit "\"code\":${x:-0}"
exit "${x:-0}"
