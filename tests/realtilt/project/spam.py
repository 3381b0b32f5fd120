import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 30000
for i in range(n):
    sys.stdout.write(f"spam line {i:06d} {'x' * 80}\n")
sys.stdout.flush()
