package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Each test's database is its own, and the password is needed.
func TestDatabasesAreSeparateAndNeedThePassword(t *testing.T) {
	ctx := context.Background()
	a, s := Database(t)
	b, _ := Database(t)
	if a == b {
		t.Fatal("one database for two tests")
	}
	if c, err := pgx.Connect(ctx, a); err == nil {
		c.Close(ctx)
		t.Fatal("a login without the password was accepted")
	}
	c, err := pgx.Connect(ctx, a+"&password="+s.Password)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE TABLE x (n int)`); err != nil {
		t.Fatal(err)
	}
	c2, err := pgx.Connect(ctx, b+"&password="+s.Password)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	if _, err := c2.Exec(ctx, `SELECT * FROM x`); err == nil {
		t.Error("the other database sees the table")
	}
}
