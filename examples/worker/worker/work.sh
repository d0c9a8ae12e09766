# the work loop: one job a second, a heartbeat after each; on SIGTERM (reroll's stop) it
# finishes at once (sh as PID 1 would otherwise ignore the signal until Docker's kill)
trap 'echo "worker $JOB_VERSION stopping"; exit 0' TERM
echo "worker $JOB_VERSION started"
n=0
while true; do
  n=$((n + 1))
  touch /tmp/heartbeat
  [ $((n % 10)) = 0 ] && echo "worker $JOB_VERSION: $n jobs done"
  sleep 1 &
  wait $!
done
