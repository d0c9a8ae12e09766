# the work loop: one job a second, a heartbeat after each
echo "worker $JOB_VERSION started"
n=0
while true; do
  n=$((n + 1))
  touch /tmp/heartbeat
  [ $((n % 10)) = 0 ] && echo "worker $JOB_VERSION: $n jobs done"
  sleep 1
done
