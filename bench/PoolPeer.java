// bench/PoolPeer.java: bench/pool's contended cases run through HikariCP (Debian's
// libhikaricp-java with pgjdbc), for a side-by-side comparison on the same server in the same
// run. bench_pool starts it (`scripts/bench pool-peer`) and drives it through stdin so that its
// windows interleave with pgkit's:
//   java -cp HikariCP.jar:postgresql.jar:slf4j-api.jar:slf4j-nop.jar PoolPeer.java URL WINDOW_MS
// It prints "ready", then answers "window N" (run one window of case N, print "ok") and "table"
// (print the table in bench_pool's layout, then "end"). The cases are bench_pool's: 4 threads on
// their own connections, then 4, 8, 16 and 64 threads over a pool of 4, each thread looping
// on getConnection, SELECT 1, close.

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

public class PoolPeer {
  static final class Case {
    final String name;
    final int threads;
    final boolean pooled;
    final List<Double> rates = new ArrayList<>();
    long[] waits = new long[0];

    Case(String name, int threads, boolean pooled) {
      this.name = name;
      this.threads = threads;
      this.pooled = pooled;
    }
  }

  // A growable list of waits, one per thread.
  static final class Waits {
    long[] values = new long[1 << 16];
    int size = 0;

    void add(long value) {
      if (size == values.length) values = Arrays.copyOf(values, size * 2);
      values[size++] = value;
    }
  }

  static String jdbcUrl;
  static String user;
  static HikariDataSource pool;
  static final List<Connection> own = new ArrayList<>();

  static void selectOne(Connection connection) throws Exception {
    try (Statement statement = connection.createStatement();
        ResultSet rows = statement.executeQuery("SELECT 1")) {
      rows.next();
    }
  }

  static void runWindow(Case which, long windowMs) throws Exception {
    AtomicBoolean go = new AtomicBoolean(false);
    AtomicBoolean stop = new AtomicBoolean(false);
    long[] done = new long[which.threads];
    Waits[] waits = new Waits[which.threads];
    Thread[] workers = new Thread[which.threads];
    for (int t = 0; t < which.threads; ++t) {
      final int index = t;
      waits[t] = new Waits();
      workers[t] =
          new Thread(
              () -> {
                try {
                  while (!go.get()) Thread.yield();
                  long count = 0;
                  if (which.pooled) {
                    while (!stop.get()) {
                      long asked = System.nanoTime();
                      try (Connection connection = pool.getConnection()) {
                        waits[index].add(System.nanoTime() - asked);
                        selectOne(connection);
                      }
                      ++count;
                    }
                  } else {
                    Connection connection = own.get(index);
                    while (!stop.get()) {
                      selectOne(connection);
                      ++count;
                    }
                  }
                  done[index] = count;
                } catch (Exception e) {
                  throw new RuntimeException(e);
                }
              });
      workers[t].start();
    }
    long started = System.nanoTime();
    go.set(true);
    Thread.sleep(windowMs);
    stop.set(true);
    double elapsed = (System.nanoTime() - started) / 1e9;
    for (Thread worker : workers) worker.join();
    long total = 0;
    for (long count : done) total += count;
    which.rates.add(total / elapsed);
    int added = 0;
    for (Waits mine : waits) added += mine.size;
    long[] merged = Arrays.copyOf(which.waits, which.waits.length + added);
    int at = which.waits.length;
    for (Waits mine : waits) {
      System.arraycopy(mine.values, 0, merged, at, mine.size);
      at += mine.size;
    }
    which.waits = merged;
  }

  static double median(List<Double> values) {
    List<Double> sorted = new ArrayList<>(values);
    Collections.sort(sorted);
    return sorted.isEmpty() ? 0.0 : sorted.get(sorted.size() / 2);
  }

  // Debian's jar has no Implementation-Version; Maven's pom.properties inside it has it.
  static String hikariVersion() {
    try (java.io.InputStream in =
        HikariDataSource.class.getResourceAsStream(
            "/META-INF/maven/com.zaxxer/HikariCP/pom.properties")) {
      java.util.Properties properties = new java.util.Properties();
      if (in != null) properties.load(in);
      return properties.getProperty("version", "(version unknown)");
    } catch (java.io.IOException e) {
      return "(version unknown)";
    }
  }

  static String durationText(long ns) {
    if (ns < 1_000_000) return String.format("%.0f us", ns / 1e3);
    return String.format("%.1f ms", ns / 1e6);
  }

  public static void main(String[] args) throws Exception {
    // postgresql://user@host:port/database, as scripts/pg-sandbox prints it.
    URI uri = new URI(args[0]);
    long windowMs = Long.parseLong(args[1]);
    jdbcUrl = "jdbc:postgresql://" + uri.getHost() + ":" + uri.getPort() + uri.getPath();
    user = uri.getUserInfo() == null ? "postgres" : uri.getUserInfo().split(":")[0];

    HikariConfig config = new HikariConfig();
    config.setJdbcUrl(jdbcUrl);
    config.setUsername(user);
    config.setMaximumPoolSize(4);
    config.setMinimumIdle(4);
    config.setConnectionTimeout(60_000);
    pool = new HikariDataSource(config);
    for (int i = 0; i < 4; ++i) own.add(DriverManager.getConnection(jdbcUrl, user, ""));

    List<Case> cases = new ArrayList<>();
    cases.add(new Case("4 own connections", 4, false));
    cases.add(new Case("4 over a pool of 4", 4, true));
    cases.add(new Case("8 over a pool of 4", 8, true));
    cases.add(new Case("16 over a pool of 4", 16, true));
    cases.add(new Case("64 over a pool of 4", 64, true));

    // Warm the JIT up on both paths before anything is measured.
    runWindow(new Case("warm-up", 4, false), 1000);
    runWindow(new Case("warm-up", 8, true), 1000);
    System.out.println("ready");
    System.out.flush();

    BufferedReader input = new BufferedReader(new InputStreamReader(System.in));
    for (String line = input.readLine(); line != null; line = input.readLine()) {
      if (line.startsWith("window ")) {
        runWindow(cases.get(Integer.parseInt(line.substring(7).trim())), windowMs);
        System.out.println("ok");
      } else if (line.equals("table")) {
        double ownedRate = median(cases.get(0).rates);
        System.out.printf(
            "HikariCP %s (pgjdbc %s, Java %s): same cases, same windows, interleaved%n",
            hikariVersion(),
            org.postgresql.Driver.class.getPackage().getImplementationVersion(),
            System.getProperty("java.version"));
        System.out.printf(
            "%-22s %10s %7s %10s %10s %10s%n",
            "HikariCP", "stmt/s", "ratio", "wait p50", "wait p99", "wait max");
        for (Case which : cases) {
          double rate = median(which.rates);
          String p50 = "-", p99 = "-", most = "-";
          if (which.waits.length > 0) {
            long[] sorted = which.waits.clone();
            Arrays.sort(sorted);
            p50 = durationText(sorted[(int) (0.50 * (sorted.length - 1))]);
            p99 = durationText(sorted[(int) (0.99 * (sorted.length - 1))]);
            most = durationText(sorted[sorted.length - 1]);
          }
          System.out.printf(
              "%-22s %10.0f %7.2f %10s %10s %10s%n",
              which.name, rate, rate / ownedRate, p50, p99, most);
        }
        System.out.println("end");
      }
      System.out.flush();
    }
    for (Connection connection : own) connection.close();
    pool.close();
  }
}
